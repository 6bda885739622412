/* C counterparts of the foundation benchmark's dad functions (benchmarks/foundation.py).
 * Built with `cc -O3 -march=native -shared -fPIC -ffp-contract=off [-fopenmp-simd]`: strict
 * IEEE (no FMA contraction), as dad is
 * by default. Loops are written exactly as in examples/rosenbrock.dad. */
#include <stdint.h>

/* rosen: the LANGUAGE.md first program. A strict sequential sum, as in dad. */
double rosen(const double *restrict x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n - 1; i++) {
        double a = x[i + 1] - x[i] * x[i];
        double b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    return s;
}

/* dot_loop: the explicit loop, summed in order (no reassociation, like dad's loops). */
double dot_loop(const double *restrict a, const double *restrict b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* dot_any_order: dad's builtin `dot` may sum in any order; so may this loop (OpenMP SIMD
 * reduction; with a compiler lacking -fopenmp-simd the pragma is ignored). */
double dot_any_order(const double *restrict a, const double *restrict b, int64_t n) {
    double s = 0.0;
#pragma omp simd reduction(+:s)
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

double add1(double x) { return x + 1.0; }
