// SPDX-License-Identifier: MIT
// SVE corpus (Arm64SveCorpusTests): loops gcc -O3 -march=armv8.2-a+sve auto-vectorises, run natively under
// qemu-aarch64 (-DHOSTED, prints the digest) and as a raw guest on the emulated arm64 vCPU (sve_run returns it).
#include <stdint.h>

#define N 203
static int32_t ia[N], ib[N], ic[N];
static int64_t la[N];
static uint8_t ba[N + 64], bb[N + 64];
static float fa[N], fb[N], fc[N];
static double da[N], db[N];
static int16_t ha[N];

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001B3ULL + (h >> 29); }

__attribute__((noinline)) static int32_t sum_i32(const int32_t *a, int n) { int32_t s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }
__attribute__((noinline)) static int64_t sum_i32_to_i64(const int32_t *a, int n) { int64_t s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }
__attribute__((noinline)) static void saxpy(float *y, const float *x, float a, int n) { for (int i = 0; i < n; i++) y[i] = a * x[i] + y[i]; }
__attribute__((noinline)) static void daxpy(double *y, const double *x, double a, int n) { for (int i = 0; i < n; i++) y[i] += a * x[i]; }
__attribute__((noinline)) static void bcopy8(uint8_t *d, const uint8_t *s, int n) { for (int i = 0; i < n; i++) d[i] = s[i]; }
__attribute__((noinline)) static int bcount_eq(const uint8_t *a, const uint8_t *b, int n) { int c = 0; for (int i = 0; i < n; i++) c += a[i] == b[i]; return c; }
__attribute__((noinline)) static int my_strlen(const uint8_t *s) { int i = 0; while (s[i]) i++; return i; }
__attribute__((noinline)) static float fsum(const float *a, int n) { float s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }
__attribute__((noinline)) static double dsum_fast(const double *a, int n) { double s = 0; for (int i = 0; i < n; i++) s += a[i] * a[i]; return s; }
__attribute__((noinline)) static int32_t imax(const int32_t *a, int n) { int32_t m = a[0]; for (int i = 0; i < n; i++) m = a[i] > m ? a[i] : m; return m; }
__attribute__((noinline)) static uint32_t umin(const int32_t *a, int n) { uint32_t m = ~0u; for (int i = 0; i < n; i++) m = (uint32_t)a[i] < m ? (uint32_t)a[i] : m; return m; }
__attribute__((noinline)) static void cond_store(int32_t *d, const int32_t *a, const int32_t *b, int n) { for (int i = 0; i < n; i++) if (a[i] > b[i]) d[i] = a[i] - b[i]; }
__attribute__((noinline)) static void select_i(int32_t *d, const int32_t *a, const int32_t *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] < 0 ? b[i] : a[i] * 3; }
__attribute__((noinline)) static void logic(int32_t *d, const int32_t *a, const int32_t *b, int n) { for (int i = 0; i < n; i++) d[i] = ((a[i] & b[i]) | (a[i] ^ 0x55)) - (b[i] | 7); }
__attribute__((noinline)) static void mul_i(int32_t *d, const int32_t *a, const int32_t *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] * b[i] + 5; }
__attribute__((noinline)) static void widen(int64_t *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) d[i] = (int64_t)a[i] * 3; }
__attribute__((noinline)) static void widen_u(int64_t *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) d[i] = (uint32_t)a[i]; }
__attribute__((noinline)) static void iota(int32_t *d, int n) { for (int i = 0; i < n; i++) d[i] = i * 7 + 1; }
__attribute__((noinline)) static void fill(int32_t *d, int32_t v, int n) { for (int i = 0; i < n; i++) d[i] = v; }
__attribute__((noinline)) static int last_neg(const int32_t *a, int n) { int r = -1; for (int i = 0; i < n; i++) if (a[i] < 0) r = i; return r; }
__attribute__((noinline)) static void fmul_arr(float *d, const float *a, const float *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] * b[i] - 1.5f; }
__attribute__((noinline)) static void h_add(int16_t *d, const int16_t *a, int n) { for (int i = 0; i < n; i++) d[i] = (int16_t)(a[i] + 3); }
__attribute__((noinline)) static void b_add(uint8_t *d, const uint8_t *a, const uint8_t *b, int n) { for (int i = 0; i < n; i++) d[i] = (uint8_t)(a[i] + b[i]); }
__attribute__((noinline)) static void neg_abs(int32_t *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) d[i] = a[i] < 0 ? -a[i] : a[i]; }
__attribute__((noinline)) static void shifts(int32_t *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) d[i] = (a[i] >> 3) + (int32_t)((uint32_t)a[i] << 2) + (int32_t)((uint32_t)a[i] >> 5); }
__attribute__((noinline)) static void f_to_i(int32_t *d, const float *a, int n) { for (int i = 0; i < n; i++) d[i] = (int32_t)a[i]; }
__attribute__((noinline)) static void i_to_f(float *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) d[i] = (float)a[i] * 0.25f; }
__attribute__((noinline)) static void gather(int32_t *d, const int32_t *a, const int32_t *idx, int n) { for (int i = 0; i < n; i++) d[i] = a[idx[i]]; }
__attribute__((noinline)) static void fmax_arr(float *d, const float *a, const float *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] > b[i] ? a[i] : b[i]; }

__attribute__((noinline)) static void cond_load(int32_t *d, const int32_t *a, const int32_t *b, int n) { for (int i = 0; i < n; i++) d[i] = b[i] & 1 ? a[i] : 0; }
__attribute__((noinline)) static void fdiv_sqrt(float *d, const float *a, const float *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] / (b[i] + 1.0f) + __builtin_sqrtf(b[i]); }
__attribute__((noinline)) static void d_to_f(float *d, const double *a, int n) { for (int i = 0; i < n; i++) d[i] = (float)a[i]; }
__attribute__((noinline)) static uint8_t bmax(const uint8_t *a, int n) { uint8_t m = 0; for (int i = 0; i < n; i++) m = a[i] > m ? a[i] : m; return m; }
__attribute__((noinline)) static int16_t hsum(const int16_t *a, int n) { int16_t s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }
__attribute__((noinline)) static uint32_t absdiff(const uint8_t *a, const uint8_t *b, int n) { uint32_t s = 0; for (int i = 0; i < n; i++) s += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]; return s; }
__attribute__((noinline)) static int64_t dot64(const int64_t *a, const int32_t *b, int n) { int64_t s = 0; for (int i = 0; i < n; i++) s += a[i] * b[i]; return s; }
__attribute__((noinline)) static uint32_t xor_red(const int32_t *a, int n) { uint32_t x = 0; for (int i = 0; i < n; i++) x ^= (uint32_t)a[i]; return x; }
__attribute__((noinline)) static void rev_copy(int32_t *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) d[i] = a[n - 1 - i]; }
__attribute__((noinline)) static void fminmax(float *d, const float *a, const float *b, int n) { for (int i = 0; i < n; i++) d[i] = __builtin_fminf(a[i], b[i]) - __builtin_fmaxf(a[i], 0.5f); }

/* Structures (LD2–LD4 / ST2–ST4) and scatter stores. */
struct p2 { int32_t x, y; };
struct p3 { int32_t x, y, z; };
struct q4 { int16_t a, b, c, d; };
struct rgba { uint8_t r, g, b, a; };
static struct p2 pt2[N];
static struct p3 pt3[N];
static struct q4 q4a[N], q4b[N];
static struct rgba px[N];
static double dd[N];
static int64_t lidx[N];
__attribute__((noinline)) static void soa3(int32_t *d, const struct p3 *p, int n) { for (int i = 0; i < n; i++) d[i] = p[i].x * 3 + p[i].y - p[i].z; }
__attribute__((noinline)) static void aos2(struct p2 *d, const int32_t *a, const int32_t *b, int n) { for (int i = 0; i < n; i++) { d[i].x = a[i] + 1; d[i].y = b[i] - a[i]; } }
__attribute__((noinline)) static void sum2(int64_t *d, const struct p2 *p, int n) { for (int i = 0; i < n; i++) d[i] = (int64_t)p[i].x + p[i].y; }
__attribute__((noinline)) static void shuf4(struct q4 *d, const struct q4 *s, int n) { for (int i = 0; i < n; i++) { d[i].a = s[i].d; d[i].b = (int16_t)(s[i].c + 1); d[i].c = s[i].b; d[i].d = (int16_t)(s[i].a ^ 5); } }
__attribute__((noinline)) static void gray(uint8_t *d, const struct rgba *p, int n) { for (int i = 0; i < n; i++) d[i] = (uint8_t)(p[i].r + p[i].g + p[i].b - p[i].a); }
__attribute__((noinline)) static void set3(struct p3 *d, const int32_t *a, int n) { for (int i = 0; i < n; i++) { d[i].x = a[i]; d[i].y = a[i] >> 2; d[i].z = -a[i]; } }
__attribute__((noinline)) static void scatter(int32_t *d, const int32_t *a, const int32_t *idx, int n) { for (int i = 0; i < n; i++) d[idx[i]] = a[i]; }
__attribute__((noinline)) static void scatter64(double *d, const double *a, const int64_t *idx, int n) { for (int i = 0; i < n; i++) d[idx[i]] = a[i] * 2.0; }

/* Half precision conversions (FCVT .h <-> .s / .d). */
static _Float16 hf[N];
__attribute__((noinline)) static void f2h(_Float16 *d, const float *a, int n) { for (int i = 0; i < n; i++) d[i] = (_Float16)(a[i] * 37.0f); }
__attribute__((noinline)) static void h2f(float *d, const _Float16 *a, int n) { for (int i = 0; i < n; i++) d[i] = (float)a[i] + 0.125f; }
__attribute__((noinline)) static void h2d(double *d, const _Float16 *a, int n) { for (int i = 0; i < n; i++) d[i] = (double)a[i] * 3.0; }

/* Half-precision arithmetic (SVE .h: FMAD/FMLA, FCMGT, FMAXNM, FSUB, FMUL #imm, FADD, FDIV, FADDA); +fp16 only for the
   types, the vector loops are what run (gcc's scalar fallbacks are for overlapping arrays). */
static _Float16 hg[N], hh[N];
__attribute__((noinline, target("+fp16"))) static void hmla(_Float16 *d, const _Float16 *a, const _Float16 *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] * b[i] + d[i]; }
__attribute__((noinline, target("+fp16"))) static void hops(_Float16 *d, const _Float16 *a, const _Float16 *b, int n) { for (int i = 0; i < n; i++) d[i] = a[i] > b[i] ? (a[i] - b[i]) / (b[i] + (_Float16)3.0f) : __builtin_fmaxf16(a[i], b[i]) * (_Float16)0.5f; }
__attribute__((noinline, target("+fp16"))) static _Float16 hsumf(const _Float16 *a, int n) { _Float16 s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }

/* First-fault and non-fault loads: loops whose results do not depend on how many elements each load delivered
   (the raw guest runs with the MMU off, where every non-first element is Device memory and is never read). */
__attribute__((noinline)) static uint64_t ff_strlen(const uint8_t *s)
{
    uint64_t i;
    __asm__ volatile(
        "mov %0, #0\n"
        "ptrue p0.b\n"
        "1: setffr\n"
        "ldff1b {z0.b}, p0/z, [%1, %0]\n"
        "rdffrs p1.b, p0/z\n"
        "cmpeq p2.b, p1/z, z0.b, #0\n"
        "b.any 2f\n"
        "incp %0, p1.b\n"
        "b 1b\n"
        "2:\n"
        : "=&r"(i) : "r"(s) : "memory", "cc", "z0", "p0", "p1", "p2");
    while (s[i]) i++;
    return i;
}
__attribute__((noinline)) static uint64_t ff_gather_sum(const int32_t *a, const int32_t *idx)
{
    uint64_t r;
    __asm__ volatile(
        "ptrue p0.s\n"
        "ptrue p2.s\n"
        "ld1w {z3.s}, p0/z, [%2]\n"
        "mov z1.s, #0\n"
        "1: setffr\n"
        "ldff1w {z0.s}, p2/z, [%1, z3.s, uxtw #2]\n"
        "rdffr p1.b, p2/z\n"
        "add z1.s, p1/m, z1.s, z0.s\n"
        "bics p2.b, p2/z, p2.b, p1.b\n"
        "b.any 1b\n"
        "rdffr p3.b\n"
        "wrffr p3.b\n"
        "uaddv d1, p0, z1.s\n"
        "fmov %0, d1\n"
        : "=r"(r) : "r"(a), "r"(idx) : "memory", "cc", "z0", "z1", "z3", "p0", "p1", "p2", "p3");
    return r;
}
__attribute__((noinline)) static uint64_t nf_bsum(const uint8_t *s, uint64_t n)
{
    uint64_t sum = 0, t;
    __asm__ volatile(
        "1: whilelo p0.b, xzr, %2\n"
        "b.none 3f\n"
        "setffr\n"
        "ldnf1b {z0.b}, p0/z, [%1]\n"
        "rdffrs p1.b, p0/z\n"
        "b.any 2f\n"
        "setffr\n"
        "ldff1b {z0.b}, p0/z, [%1, xzr]\n"
        "rdffr p1.b, p0/z\n"
        "2: uaddv d0, p1, z0.b\n"
        "fmov %3, d0\n"
        "add %0, %0, %3\n"
        "cntp %3, p0, p1.b\n"
        "add %1, %1, %3\n"
        "sub %2, %2, %3\n"
        "b 1b\n"
        "3:\n"
        : "+r"(sum), "+r"(s), "+r"(n), "=&r"(t) : : "memory", "cc", "z0", "p0", "p1");
    return sum;
}

/* Hand-written SVE sequences (the instructions gcc did not emit above), their Z/P results and flags stored for the digest. */
static uint8_t asm_in[256 * 4] __attribute__((aligned(16)));
static uint8_t asm_out[256 * 40 + 64] __attribute__((aligned(16)));
__attribute__((noinline)) static void asm_mix(void)
{
    __asm__ volatile(
        "ptrue p0.b\n"
        "add x9, %1, #2048\n"
        "ld1b {z0.b}, p0/z, [%0]\n"
        "ld1b {z1.b}, p0/z, [%0, #1, mul vl]\n"
        "ld1b {z2.b}, p0/z, [%0, #2, mul vl]\n"
        "ld1b {z3.b}, p0/z, [%0, #3, mul vl]\n"
        "ptrue p1.s, vl5\n"
        "cmpgt p2.s, p0/z, z0.s, z1.s\n"
        "movprfx z4, z0\n"
        "cls z4.h, p0/m, z1.h\n"
        "str z4, [%1, #0, mul vl]\n"
        "movprfx z4, z0\n"
        "clz z4.s, p1/m, z2.s\n"
        "str z4, [%1, #1, mul vl]\n"
        "cnt z5.b, p0/m, z3.b\n"
        "cnot z6.d, p2/m, z0.d\n"
        "str z5, [%1, #2, mul vl]\n"
        "str z6, [%1, #3, mul vl]\n"
        "movprfx z7, z0\n"
        "sdiv z7.s, p1/m, z7.s, z1.s\n"
        "str z7, [%1, #4, mul vl]\n"
        "movprfx z7, z2\n"
        "udivr z7.d, p0/m, z7.d, z3.d\n"
        "str z7, [%1, #5, mul vl]\n"
        "movprfx z7, z0\n"
        "smulh z7.h, p0/m, z7.h, z1.h\n"
        "str z7, [%1, #6, mul vl]\n"
        "movprfx z7, z0\n"
        "umulh z7.b, p0/m, z7.b, z1.b\n"
        "str z7, [%1, #7, mul vl]\n"
        "movprfx z7, z0\n"
        "sabd z7.s, p2/m, z7.s, z3.s\n"
        "str z7, [%1, #8, mul vl]\n"
        "movprfx z7, z1\n"
        "uabd z7.h, p0/m, z7.h, z2.h\n"
        "str z7, [%1, #9, mul vl]\n"
        "sqadd z7.b, z0.b, z1.b\n"
        "str z7, [%1, #10, mul vl]\n"
        "uqsub z7.h, z2.h, z3.h\n"
        "str z7, [%1, #11, mul vl]\n"
        "movprfx z7, z0\n"
        "sqsub z7.s, z7.s, #200\n"
        "str z7, [%1, #12, mul vl]\n"
        "movprfx z7, z1\n"
        "lsrr z7.s, p0/m, z7.s, z2.s\n"
        "str z7, [%1, #13, mul vl]\n"
        "movprfx z7, z3\n"
        "asr z7.h, p2/m, z7.h, z0.h\n"
        "str z7, [%1, #14, mul vl]\n"
        "zip2 z7.h, z0.h, z1.h\n"
        "str z7, [%1, #15, mul vl]\n"
        "uzp2 z7.s, z2.s, z3.s\n"
        "str z7, [%1, #16, mul vl]\n"
        "trn1 z7.b, z0.b, z3.b\n"
        "str z7, [%1, #17, mul vl]\n"
        "sunpkhi z7.d, z1.s\n"
        "str z7, [%1, #18, mul vl]\n"
        "mov w3, #0x1234\n"
        "movprfx z7, z0\n"
        "insr z7.s, w3\n"
        "str z7, [%1, #19, mul vl]\n"
        "lasta w4, p2, z1.s\n"
        "mov x5, #77\n"
        "clasta w5, p1, w5, z2.s\n"
        "stp x4, x5, [%1, #-16]\n"
        "cmphs p3.h, p0/z, z0.h, z1.d\n"
        "str p3, [x9, #0, mul vl]\n"
        "cmple p3.b, p0/z, z2.b, #-3\n"
        "str p3, [x9, #1, mul vl]\n"
        "cmpls p3.s, p1/z, z3.s, #100\n"
        "str p3, [x9, #2, mul vl]\n"
        "ands p3.b, p0/z, p2.b, p1.b\n"
        "mrs x4, nzcv\n"
        "nor p3.b, p0/z, p2.b, p1.b\n"
        "str p3, [x9, #3, mul vl]\n"
        "orns p3.b, p1/z, p2.b, p3.b\n"
        "mrs x5, nzcv\n"
        "stp x4, x5, [%1, #-32]\n"
        "str p3, [x9, #4, mul vl]\n"
        "scvtf z4.s, p0/m, z0.s\n"
        "scvtf z5.s, p0/m, z1.s\n"
        "fcmlt p3.s, p0/z, z4.s, #0.0\n"
        "str p3, [x9, #5, mul vl]\n"
        "facgt p3.s, p0/z, z4.s, z5.s\n"
        "str p3, [x9, #6, mul vl]\n"
        "movprfx z7, z4\n"
        "fabd z7.s, p0/m, z7.s, z5.s\n"
        "str z7, [%1, #20, mul vl]\n"
        "movprfx z7, z4\n"
        "fdivr z7.s, p1/m, z7.s, z5.s\n"
        "str z7, [%1, #21, mul vl]\n"
        "movprfx z7, z4\n"
        "fmax z7.s, p0/m, z7.s, #1.0\n"
        "str z7, [%1, #22, mul vl]\n"
        "movprfx z7, z5\n"
        "fsubr z7.s, p2/m, z7.s, #0.5\n"
        "str z7, [%1, #23, mul vl]\n"
        "fmaxv s6, p0, z4.s\n"
        "fminnmv s7, p1, z5.s\n"
        "stp s6, s7, [%1, #-40]\n"
        "movprfx z7, z4\n"
        "fnmla z7.s, p0/m, z5.s, z4.s\n"
        "str z7, [%1, #24, mul vl]\n"
        "movprfx z7, z4\n"
        "fmsb z7.s, p0/m, z5.s, z4.s\n"
        "str z7, [%1, #25, mul vl]\n"
        "fcvtzu z7.s, p0/m, z5.s\n"
        "str z7, [%1, #26, mul vl]\n"
        "ucvtf z7.d, p0/m, z2.d\n"
        "str z7, [%1, #27, mul vl]\n"
        "mov w6, #-7\n"
        "sqincw x6, w6, all, mul #4\n"
        "mov x7, #3\n"
        "uqdecd w7, all, mul #2\n"
        "stp x6, x7, [%1, #-56]\n"
        "ld1sb {z7.h}, p0/z, [%0, #1, mul vl]\n"
        "str z7, [%1, #28, mul vl]\n"
        "ld1rsh {z7.d}, p1/z, [%0, #6]\n"
        "str z7, [%1, #29, mul vl]\n"
        "movprfx z6, z2\n"
        "and z6.d, z6.d, #0x1f\n"
        "ld1d {z7.d}, p0/z, [%0, z6.d, lsl #3]\n"
        "str z7, [%1, #30, mul vl]\n"
        "movprfx z6, z3\n"
        "and z6.s, z6.s, #0x3f\n"
        "ld1sh {z7.s}, p0/z, [%0, z6.s, uxtw #1]\n"
        "str z7, [%1, #31, mul vl]\n"
        "ldr z7, [%0, #1, mul vl]\n"
        "str z7, [%1, #32, mul vl]\n"
        "ldr p3, [%0, #5, mul vl]\n"
        "str p3, [x9, #7, mul vl]\n"
        "pfalse p3.b\n"
        "ptest p0, p3.b\n"
        "mrs x4, nzcv\n"
        "cntp x5, p0, p2.s\n"
        "stp x4, x5, [%1, #-64]\n"
        "mov z7.h, p2/m, w5\n"
        "str z7, [%1, #33, mul vl]\n"
        "mov z7.d, z1.d[1]\n"
        "str z7, [%1, #34, mul vl]\n"
        "movprfx z6, z2\n"
        "and z6.d, z6.d, #0xffff\n"
        "ucvtf z6.d, p0/m, z6.d\n"
        "fcvt z7.h, p0/m, z6.d\n"
        "str z7, [%1, #35, mul vl]\n"
        "fcvt z6.d, p0/m, z7.h\n"
        "str z6, [%1, #36, mul vl]\n"
        "st1h {z1.s}, p1, [%1, #7, mul vl]\n"
        "mov x8, #5\n"
        "st1b {z2.d}, p2, [%1, x8]\n"
        :
        : "r"(asm_in), "r"(asm_out + 64)
        : "memory", "cc", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "z0", "z1", "z2", "z3", "z4", "z5", "z6", "z7", "p0", "p1", "p2", "p3");
}

uint64_t sve_run(void)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        ia[i] = (int32_t)(seed >> 3) - (1 << 27);
        ib[i] = (int32_t)((seed >> 11) & 0xFFFF) - 30000;
        fa[i] = (float)((int32_t)(seed >> 16) - 30000) / 64.0f;
        fb[i] = (float)(i % 17) * 0.75f;
        da[i] = (double)(int32_t)(seed >> 8) / 1000.0;
        db[i] = i * 0.5;
        ha[i] = (int16_t)seed;
        ba[i] = (uint8_t)(seed >> 5) | 1;
        bb[i] = (uint8_t)(i * 3);
    }
    ba[N] = 0;
    for (int n = 0; n <= N; n += (n < 20 ? 1 : 37)) {
        h = mix(h, (uint32_t)sum_i32(ia, n));
        h = mix(h, (uint64_t)sum_i32_to_i64(ia, n));
        h = mix(h, (uint32_t)bcount_eq(ba, bb, n));
        h = mix(h, n ? (uint32_t)imax(ia, n) : 0);
        h = mix(h, umin(ib, n));
        h = mix(h, (uint32_t)last_neg(ib, n));
        union { float f; uint32_t u; } fu = { .f = fsum(fa, n) };
        h = mix(h, fu.u);
    }
    saxpy(fc, fa, 1.25f, N); saxpy(fc, fb, -0.5f, N - 3);
    daxpy(db, da, 0.125, N);
    union { double d; uint64_t u; } du = { .d = dsum_fast(db, N) };
    h = mix(h, du.u);
    bcopy8(bb + 1, ba, N - 2);
    h = mix(h, (uint32_t)my_strlen(ba));
    h = mix(h, (uint32_t)my_strlen(bb + 1));
    cond_store(ic, ia, ib, N);
    select_i(ic, ic, ib, N - 1);
    logic(ic, ic, ia, N);
    mul_i(ic, ic, ib, N - 5);
    widen(la, ic, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint64_t)la[i]);
    widen_u(la, ib, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint64_t)la[i]);
    iota(ic, N - 7);
    fill(ic + 3, -9, 11);
    neg_abs(ic, ic, N);
    shifts(ic, ia, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ic[i]);
    fmul_arr(fc, fa, fb, N);
    fmax_arr(fa, fc, fb, N);
    f_to_i(ic, fa, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ic[i]);
    i_to_f(fc, ia, N);
    for (int i = 0; i < N; i++) { union { float f; uint32_t u; } x = { .f = fc[i] }; h = mix(h, x.u); }
    h_add(ha, ha, N);
    b_add(bb, ba, bb, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint16_t)ha[i] ^ ((uint64_t)bb[i] << 16));
    for (int i = 0; i < N; i++) ib[i] = (ib[i] & 0x7f) % N;
    gather(ic, ia, ib, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ic[i]);
    cond_load(ic, ia, ib, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ic[i]);
    fdiv_sqrt(fc, fa, fb, N);
    for (int i = 0; i < N; i++) { union { float f; uint32_t u; } x = { .f = fc[i] }; h = mix(h, x.u); }
    d_to_f(fc, da, N);
    fminmax(fa, fc, fb, N);
    for (int i = 0; i < N; i++) { union { float f; uint32_t u; } x = { .f = fa[i] }; h = mix(h, x.u); }
    for (int n = 0; n <= N; n += 29) {
        h = mix(h, bmax(ba, n));
        h = mix(h, (uint16_t)hsum(ha, n));
        h = mix(h, absdiff(ba, bb, n));
        h = mix(h, (uint64_t)dot64(la, ia, n));
        h = mix(h, xor_red(ia, n));
    }
    rev_copy(ic, ia, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ic[i]);
    for (int i = 0; i < N; i++) {
        pt3[i].x = ia[i]; pt3[i].y = ib[i] * 5; pt3[i].z = ic[i];
        q4a[i].a = (int16_t)ia[i]; q4a[i].b = (int16_t)(ia[i] >> 16); q4a[i].c = ha[i]; q4a[i].d = (int16_t)ib[i];
        px[i].r = ba[i]; px[i].g = bb[i]; px[i].b = (uint8_t)ia[i]; px[i].a = (uint8_t)(i * 7);
        lidx[i] = (i * 37) % N;
    }
    soa3(ic, pt3, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ic[i]);
    aos2(pt2, ia, ic, N - 2);
    sum2(la, pt2, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint64_t)la[i]);
    shuf4(q4b, q4a, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint16_t)q4b[i].a | (uint64_t)(uint16_t)q4b[i].b << 16 | (uint64_t)(uint16_t)q4b[i].c << 32 | (uint64_t)(uint16_t)q4b[i].d << 48);
    gray(bb, px, N);
    set3(pt3, ib, N - 1);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)pt3[i].x ^ (uint64_t)(uint32_t)pt3[i].y << 32 ^ (uint32_t)pt3[i].z ^ bb[i]);
    scatter(ic, ia, ib, N);
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ic[i]);
    scatter64(dd, da, lidx, N);
    for (int i = 0; i < N; i++) { union { double d; uint64_t u; } x = { .d = dd[i] }; h = mix(h, x.u); }
    f2h(hf, fa, N);
    h2f(fc, hf, N);
    h2d(dd, hf, N - 1);
    for (int i = 0; i < N; i++) {
        union { _Float16 f; uint16_t u; } x = { .f = hf[i] };
        union { float f; uint32_t u; } y = { .f = fc[i] };
        union { double d; uint64_t u; } z = { .d = dd[i] };
        h = mix(h, x.u ^ ((uint64_t)y.u << 16) ^ z.u);
    }
    f2h(hg, fb, N);
    for (int i = 0; i < N; i++) hh[i] = (_Float16)((float)(ia[i] >> 20) / 256.0f);
    hmla(hf, hg, hh, N);
    hops(hg, hf, hh, N - 3);
    for (int n = 0; n <= N; n += 50) { union { _Float16 f; uint16_t u; } x = { .f = hsumf(hf, n) }; h = mix(h, x.u); }
    for (int i = 0; i < N; i++) {
        union { _Float16 f; uint16_t u; } x = { .f = hf[i] }, y = { .f = hg[i] };
        h = mix(h, x.u | (uint32_t)y.u << 16);
    }
    h = mix(h, ff_strlen(ba));
    h = mix(h, ff_strlen(bb + 7));
    h = mix(h, ff_gather_sum(ia, ib));
    h = mix(h, ff_gather_sum(ic, ib + 9));
    h = mix(h, nf_bsum(ba, N));
    h = mix(h, nf_bsum(bb + 3, N - 40));
    for (unsigned i = 0; i < sizeof asm_in; i++) { seed = seed * 1103515245u + 12345u; asm_in[i] = (uint8_t)(seed >> 13); }
    asm_mix();
    for (unsigned i = 0; i < sizeof asm_out; i += 8) {
        uint64_t w = 0;
        for (int j = 0; j < 8; j++) w |= (uint64_t)asm_out[i + j] << (8 * j);
        h = mix(h, w);
    }
    // The vector length itself, so a run at another length than the oracle's differs.
    uint64_t vl;
    __asm__ volatile("cntb %0" : "=r"(vl));
    return mix(h, vl);
}

#ifdef HOSTED
#include <stdio.h>
int main(void) { printf("%016llx\n", (unsigned long long)sve_run()); return 0; }
#endif
