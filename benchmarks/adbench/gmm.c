/* ADBench's GMM objective (src/cpp/shared/gmm.h of github.com/microsoft/ADBench) in plain C,
   the primal baseline of benchmarks/adbench. Same loops as ADBench's: Q_j (x_i - mu_j) with
   the strictly-lower part added column by column, logsumexp with the maximum subtracted. */
#include <math.h>
#include <stdlib.h>

static double logsumexp(int n, const double *x) {
    double mx = x[0];
    for (int i = 1; i < n; i++) mx = fmax(mx, x[i]);
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp(x[i] - mx);
    return log(s) + mx;
}

static double log_gamma_distrib(double a, int p) {
    double out = 0.25 * p * (p - 1) * log(M_PI);
    for (int j = 1; j <= p; j++) out += lgamma(a + 0.5 * (1 - j));
    return out;
}

double gmm_objective(int d, int k, int n, const double *alphas, const double *means,
                     const double *icf, const double *x, double gamma, int m) {
    int t = d * (d + 1) / 2;
    double *qdiag = malloc(sizeof(double) * d * k);
    double *sum_qs = malloc(sizeof(double) * k);
    double *xc = malloc(sizeof(double) * d);
    double *qx = malloc(sizeof(double) * d);
    double *main_term = malloc(sizeof(double) * k);
    for (int j = 0; j < k; j++) {
        double s = 0.0;
        for (int a = 0; a < d; a++) {
            s += icf[j * t + a];
            qdiag[j * d + a] = exp(icf[j * t + a]);
        }
        sum_qs[j] = s;
    }
    double slse = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < k; j++) {
            const double *l = &icf[j * t + d];
            for (int a = 0; a < d; a++) {
                xc[a] = x[i * d + a] - means[j * d + a];
                qx[a] = qdiag[j * d + a] * xc[a];
            }
            int idx = 0;
            for (int a = 0; a < d; a++)
                for (int b = a + 1; b < d; b++)
                    qx[b] += l[idx++] * xc[a];
            double sq = 0.0;
            for (int a = 0; a < d; a++) sq += qx[a] * qx[a];
            main_term[j] = alphas[j] + sum_qs[j] - 0.5 * sq;
        }
        slse += logsumexp(k, main_term);
    }
    double err = -n * d * 0.5 * log(2 * M_PI) + slse - n * logsumexp(k, alphas);
    int nw = d + m + 1;
    double c = nw * d * (log(gamma) - 0.5 * log(2.0)) - log_gamma_distrib(0.5 * nw, d);
    double prior = 0.0;
    for (int j = 0; j < k; j++) {
        double fro = 0.0;
        for (int a = 0; a < d; a++) fro += qdiag[j * d + a] * qdiag[j * d + a];
        for (int a = d; a < t; a++) fro += icf[j * t + a] * icf[j * t + a];
        prior += 0.5 * gamma * gamma * fro - m * sum_qs[j];
    }
    free(qdiag); free(sum_qs); free(xc); free(qx); free(main_term);
    return err + prior - k * c;
}
