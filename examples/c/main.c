/* Calling a dad library from C: Rosenbrock, its gradient and an error.
 *
 *     dadc build examples/c/rosen.dad -o build
 *     cc examples/c/main.c -Ibuild build/rosen.so -Wl,-rpath,'$ORIGIN' -o build/rosen_demo
 *     ./build/rosen_demo 1.5 2.0 -0.5 1.0
 *
 * Prints rosen(x), every component of its gradient (%.17g: the exact doubles) and the
 * message of an out-of-range index. tests/test_aot_c.py checks the output against Python.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rosen.h"

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? argc - 1 : 4;
    double *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g);
    for (int64_t i = 0; i < n; i++)
        x[i] = argc > 1 ? strtod(argv[i + 1], NULL) : 0.5 * (double)i - 1.0;

    int64_t err[3] = {0, 0, 0};
    double f = rosen(x, n, err);            /* one scalar result: returned directly */
    if (err[0]) { fprintf(stderr, "rosen: %s\n", rosen_error_message(err[0])); return 1; }
    printf("rosen %.17g\n", f);

    int64_t code = rosen_grad(x, n, g, err); /* arrays come back through caller buffers */
    if (code) { fprintf(stderr, "rosen_grad: %s\n", rosen_error_message(code)); return 1; }
    for (int64_t i = 0; i < n; i++)
        printf("grad %lld %.17g\n", (long long)i, g[i]);

    double v = pick(x, n, n + 2, err);       /* out of range: NaN and errinfo set */
    if (err[0]) {
        char msg[256];
        rosen_error_format(err, msg, sizeof msg);
        printf("error %s\n", msg);
    } else {
        printf("pick %.17g\n", v);
    }
    free(x);
    free(g);
    return 0;
}
