// nnz's Transformer kernels for NVIDIA GPUs, compiled at run time by NVRTC with
// --fmad=false (no multiply-add contraction: a*b+c is a rounded product, then a
// rounded sum, as in Rust) and IEEE division and square root (NVRTC's defaults).
//
// Every kernel computes its outputs with exactly the operations, in exactly the order,
// of the CPU reference (src/kernels/scalar.rs and src/model/transformer/mod.rs):
// - a matrix product's output is one fmaf chain over k in ascending order, starting
//   from 0 or from the output's previous value;
// - a sum runs in the order of the 16-lane virtual vector (lane l adds elements
//   l, l+16, ..., then the lanes fold l += l+8, l+4, l+2, l+1);
// - exp is the same polynomial with the same constants (their bits are defined by the
//   Rust side, which prepends them to this source).
// So a GPU gives the CPU's bits: files written on either decode on the other.
//
// Parallelism is only ever across independent outputs; no atomics, no split sums.
// Integer sizes are int: the model's buffers are bounded by 2^30 floats.

extern "C" {

__device__ __forceinline__ float exp1(float x) {
    if (isnan(x)) return x;
    if (x < EXP_MIN) return 0.0f;
    if (x > EXP_MAX) x = EXP_MAX;
    float n = (x * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = EXP_P6;
    p = fmaf(p, r, EXP_P5);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P1);
    p = fmaf(p, r, EXP_P0);
    float scale = __int_as_float(((int)n + 127) << 23);
    return p * scale;
}

__device__ __forceinline__ float tanh1(float x) {
    return 2.0f / (1.0f + exp1(-2.0f * x)) - 1.0f;
}

// Folds 16 lane sums in the fixed tree order.
__device__ __forceinline__ float fold16(float* l) {
    for (int w = 8; w > 0; w /= 2)
        for (int i = 0; i < w; i++) l[i] = l[i] + l[i + w];
    return l[0];
}

// Sum of x[0..n) in the 16-lane order, by one thread.
__device__ float sum16(const float* x, int n) {
    float l[16];
    for (int i = 0; i < 16; i++) l[i] = 0.0f;
    for (int i = 0; i < n; i++) l[i & 15] = l[i & 15] + x[i];
    return fold16(l);
}

// C[z] (+)= A[z] · B[z] for matrices given by strides: element (i, p) of A is at
// a[off_a(z) + i*a_i + p*a_p], (p, j) of B at b[off_b(z) + p*b_p + j*b_j], (i, j) of
// C at c[off_c(z) + i*c_i + j]; off_x(z) = (z / zdiv)*x_z1 + (z % zdiv)*x_z2. This one
// kernel serves gemm_nn, gemm_tn and gemm_nt and the attention's batched products.
// Each thread computes the outputs (i0..i0+3, j): B's element is read once for four
// rows; each output's chain is its own.
#define TM 4
__global__ void gemm(float* c, const float* a, const float* b, int m, int n, int k, int acc,
                     int a_i, int a_p, int b_p, int b_j, int c_i, int zdiv,
                     int a_z1, int a_z2, int b_z1, int b_z2, int c_z1, int c_z2) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    int i0 = blockIdx.y * TM;
    int z = blockIdx.z;
    if (j >= n) return;
    int zh = z / zdiv, zl = z % zdiv;
    a += (long long)zh * a_z1 + (long long)zl * a_z2;
    b += (long long)zh * b_z1 + (long long)zl * b_z2;
    c += (long long)zh * c_z1 + (long long)zl * c_z2;
    float s[TM];
    const float* ar[TM];
    for (int r = 0; r < TM; r++) {
        int i = i0 + r < m ? i0 + r : m - 1;  // rows past the end compute a copy, not stored
        ar[r] = a + (long long)i * a_i;
        s[r] = (acc && i0 + r < m) ? c[(long long)(i0 + r) * c_i + j] : 0.0f;
    }
    const float* bp = b + (long long)j * b_j;
    for (int p = 0; p < k; p++) {
        float bv = bp[(long long)p * b_p];
        for (int r = 0; r < TM; r++) s[r] = fmaf(ar[r][(long long)p * a_p], bv, s[r]);
    }
    for (int r = 0; r < TM; r++)
        if (i0 + r < m) c[(long long)(i0 + r) * c_i + j] = s[r];
}

// x0[row, :] = concatenated embeddings of the row's input group; thread per element.
__global__ void embed(float* x0, const float* emb, const unsigned* inputs, int r0, int rows, int k, int e, int d) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * d) return;
    int row = r0 + idx / d, col = idx % d;
    int j = col / e, cc = col % e;
    x0[(long long)row * d + col] = emb[(long long)inputs[row * k + j] * e + cc];
}

// Embedding gradient: for each row in order, each slot of its group adds its part of
// dx. Thread per column of the embedding, so additions to one symbol keep row order.
__global__ void embed_backward(float* gemb, const float* dx, const unsigned* inputs, int rows, int k, int e, int d) {
    int cc = blockIdx.x * blockDim.x + threadIdx.x;
    if (cc >= e) return;
    for (int row = 0; row < rows; row++)
        for (int j = 0; j < k; j++) {
            long long dst = (long long)inputs[row * k + j] * e + cc;
            gemb[dst] = gemb[dst] + dx[(long long)row * d + j * e + cc];
        }
}

// out = x / rms(x) ⊙ g per row; rinv = 1/rms. Thread per row.
__global__ void rms_forward(float* out, float* rinv, const float* x, const float* g, int r0, int rows, int d,
                            float inv_d, float eps) {
    int row = r0 + blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= r0 + rows) return;
    const float* xr = x + (long long)row * d;
    float l[16];
    for (int i = 0; i < 16; i++) l[i] = 0.0f;
    for (int i = 0; i < d; i++) l[i & 15] = l[i & 15] + xr[i] * xr[i];
    float ms = fold16(l) * inv_d;
    float ri = 1.0f / sqrtf(ms + eps);
    rinv[row] = ri;
    float* o = out + (long long)row * d;
    for (int i = 0; i < d; i++) o[i] = xr[i] * ri * g[i];
}

// Backward of rms_forward for the input: dx += r·(dn − n·mean(dn ⊙ n)), dn = da ⊙ g,
// n = x·r. Thread per row.
__global__ void rms_backward_x(float* dx, const float* da, const float* x, const float* rinv, const float* g,
                               int rows, int d, float inv_d) {
    int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
    const float* xr = x + (long long)row * d;
    const float* dr = da + (long long)row * d;
    float r = rinv[row];
    float l[16];
    for (int i = 0; i < 16; i++) l[i] = 0.0f;
    for (int i = 0; i < d; i++) l[i & 15] = l[i & 15] + dr[i] * g[i] * (xr[i] * r);
    float m = fold16(l) * inv_d;
    float* o = dx + (long long)row * d;
    for (int i = 0; i < d; i++) {
        float nv = xr[i] * r;
        float dn = dr[i] * g[i];
        o[i] = o[i] + r * (dn - nv * m);
    }
}

// The gain's gradient: dg[j] += da[row, j]·n[row, j] over the rows in order. Thread per j.
__global__ void rms_backward_g(float* dg, const float* da, const float* x, const float* rinv, int rows, int d) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float s = dg[j];
    for (int row = 0; row < rows; row++) s = s + da[(long long)row * d + j] * (x[(long long)row * d + j] * rinv[row]);
    dg[j] = s;
}

// Appends the rows' keys (transposed cache) and values to the cache at position M + t.
__global__ void kv_append(float* kt, float* vc, const float* qkv, int r0, int rows, int b, int h, int dh, int d,
                          int n, int m) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * d) return;
    int row = r0 + idx / d, col = idx % d;
    int hh = col / dh, c = col % dh;
    int t = row / b, s = row % b;
    long long base = (long long)(s * h + hh) * n * dh;
    const float* q = qkv + (long long)row * 3 * d;
    kt[base + (long long)c * n + m + t] = q[d + col];
    vc[base + (long long)(m + t) * dh + c] = q[2 * d + col];
}

// Attention scores of (row, head, key j): q·k_j by mul and add in the order c = 0, 1,
// ..., then ·scale + bias; 0 outside the attended range lo..=i.
__global__ void attn_scores(float* p, const float* qkv, const float* kt, const float* rel, int r0, int rows, int b,
                            int h, int dh, int d, int n, int m, int lo, float scale) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * h * n) return;
    int j = idx % n, hh = (idx / n) % h, row = r0 + idx / (n * h);
    int t = row / b, s = row % b;
    int i = m + t;
    float* out = p + ((long long)row * h + hh) * n + j;
    if (j < lo || j > i) {
        *out = 0.0f;
        return;
    }
    const float* q = qkv + (long long)row * 3 * d + hh * dh;
    const float* kc = kt + (long long)(s * h + hh) * n * dh + j;
    float sv = 0.0f;
    for (int c = 0; c < dh; c++) sv = sv + q[c] * kc[(long long)c * n];
    *out = sv * scale + rel[hh * n + i - j];
}

// Softmax of each (row, head)'s attended scores p[lo..=i]. Thread per (row, head).
__global__ void attn_softmax(float* p, int r0, int rows, int b, int h, int n, int m, int lo) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * h) return;
    int row = r0 + idx / h, hh = idx % h;
    int t = row / b;
    int len = m + t + 1 - lo;
    float* x = p + ((long long)row * h + hh) * n + lo;
    float mx = NEG_INF;
    for (int i = 0; i < len; i++) mx = fmaxf(mx, x[i]);
    for (int i = 0; i < len; i++) x[i] = exp1(x[i] - mx);
    float inv = 1.0f / sum16(x, len);
    for (int i = 0; i < len; i++) x[i] = x[i] * inv;
}

// o = Σ_j p_j v_j over the attended keys in order j = lo, lo+1, ...; thread per
// (row, head, c).
__global__ void attn_values(float* ao, const float* p, const float* vc, int r0, int rows, int b, int h, int dh,
                            int d, int n, int m, int lo) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * d) return;
    int row = r0 + idx / d, col = idx % d;
    int hh = col / dh, c = col % dh;
    int t = row / b, s = row % b;
    int hi = m + t + 1;
    const float* pr = p + ((long long)row * h + hh) * n;
    const float* v = vc + (long long)(s * h + hh) * n * dh + c;
    float o = 0.0f;
    for (int j = lo; j < hi; j++) o = o + pr[j] * v[(long long)j * dh];
    ao[(long long)row * d + col] = o;
}

// GELU(u) = u/2 · (1 + tanh(√(2/π)·(u + 0.044715·u³))), keeping the tanh for the backward.
__global__ void gelu_forward(float* g, float* th, const float* u, int count) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float uv = u[i];
    float tv = tanh1(GELU_C * (uv + GELU_K * (uv * uv * uv)));
    th[i] = tv;
    g[i] = 0.5f * uv * (1.0f + tv);
}

// dff ⊙= d/du GELU(u).
__global__ void gelu_backward(float* dff, const float* u, const float* th, int count) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float uv = u[i], tv = th[i];
    float u2 = uv * uv;
    float dg = 0.5f * (1.0f + tv) + 0.5f * uv * (1.0f - tv * tv) * GELU_C * (1.0f + GELU_K3 * u2);
    dff[i] = dff[i] * dg;
}

// probs[row, :] = b_out for the rows r0..r0+rows.
__global__ void bias_rows(float* out, const float* bias, int r0, int rows, int v) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * v) return;
    out[(long long)r0 * v + idx] = bias[idx % v];
}

// In-place softmax of rows of width v: one warp per row. The maximum is exact in any
// order; the exponentials are element-wise; the normalizer is the 16-lane sum (lanes
// 0..15 of the warp each run one lane's chain, then fold by shuffles in tree order).
__global__ void softmax_rows(float* x, int r0, int rows, int v) {
    int row = r0 + blockIdx.x;
    int lane = threadIdx.x;
    if (row >= r0 + rows) return;
    float* xr = x + (long long)row * v;
    float mx = NEG_INF;
    for (int i = lane; i < v; i += 32) mx = fmaxf(mx, xr[i]);
    for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    for (int i = lane; i < v; i += 32) xr[i] = exp1(xr[i] - mx);
    __syncwarp();
    float s = 0.0f;
    if (lane < 16)
        for (int i = lane; i < v; i += 16) s = s + xr[i];
    for (int w = 8; w > 0; w /= 2) {
        float other = __shfl_down_sync(0xffffffffu, s, w);
        if (lane < w) s = s + other;
    }
    float total = __shfl_sync(0xffffffffu, s, 0);
    float inv = 1.0f / total;
    __syncwarp();
    for (int i = lane; i < v; i += 32) xr[i] = xr[i] * inv;
}

// dlogits = (p − onehot(target)) · inv_r, in place.
__global__ void dlogits(float* probs, const unsigned* targets, int rows, int v, float inv_r) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * v) return;
    int row = idx / v, j = idx % v;
    float x = probs[idx];
    if ((unsigned)j == targets[row]) x = x - 1.0f;
    probs[idx] = x * inv_r;
}

// out[j] += Σ_rows x[row, j] in row order. Thread per column.
__global__ void col_sum(float* out, const float* x, int rows, int cols) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    float s = out[j];
    for (int row = 0; row < rows; row++) s = s + x[(long long)row * cols + j];
    out[j] = s;
}

// Attention backward, per (stream, head) z and step t: with P and dP = dO·Vᵀ,
// dS = P ⊙ (dP − Σ P ⊙ dP) (the sum in the 16-lane order over all n keys); dp gets
// dS·scale, ds the unscaled dS (for the position bias).
__global__ void attn_ds(float* dp, float* ds, const float* p, int b, int h, int t_len, int n, float scale) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= b * h * t_len) return;
    int z = idx / t_len, t = idx % t_len;
    int s = z / h, hh = z % h;
    const float* pr = p + ((long long)(t * b + s) * h + hh) * n;
    float* dpr = dp + ((long long)z * t_len + t) * n;
    float* dsr = ds + ((long long)z * t_len + t) * n;
    float l[16];
    for (int i = 0; i < 16; i++) l[i] = 0.0f;
    for (int j = 0; j < n; j++) l[j & 15] = l[j & 15] + pr[j] * dpr[j];
    float dot = fold16(l);
    for (int j = 0; j < n; j++) {
        float dsv = pr[j] * (dpr[j] - dot);
        dsr[j] = dsv;
        dpr[j] = dsv * scale;
    }
}

// Gradient of the relative-position bias: rel_g[hh, δ] += dS[s, hh, t, i − δ] over the
// streams, then the steps, in order (where lo ≤ i − δ). Thread per (head, δ).
__global__ void rel_backward(float* rel_g, const float* ds, int b, int h, int t_len, int n, int m, int lo) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= h * n) return;
    int hh = idx / n, delta = idx % n;
    float acc = rel_g[idx];
    for (int s = 0; s < b; s++)
        for (int t = 0; t < t_len; t++) {
            int j = m + t - delta;
            if (j >= lo) acc = acc + ds[((long long)(s * h + hh) * t_len + t) * n + j];
        }
    rel_g[idx] = acc;
}

// dst[c*dst_stride + i] = src[c*src_stride + i] for chunks c < chunks, i < len.
__global__ void chunk_copy(float* dst, const float* src, int chunks, int len, int dst_stride, int src_stride) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)chunks * len) return;
    int c = idx / len, i = idx % len;
    dst[(long long)c * dst_stride + i] = src[(long long)c * src_stride + i];
}

// Adam, β1 = 0 (m is the gradient itself), then with β1 > 0: as src/model/adam.rs.
__global__ void adam0(float* w, float* v, const float* g, int count, float b2, float c2, float lr_t, float eps,
                      float clip) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float gv = g[i];
    if (clip > 0.0f) gv = gv < -clip ? -clip : (gv > clip ? clip : gv);
    float vv = b2 * v[i] + c2 * gv * gv;
    v[i] = vv;
    w[i] = w[i] - lr_t * gv / (sqrtf(vv) + eps);
}

__global__ void adam1(float* w, float* mo, float* v, const float* g, int count, float b1, float c1, float b2,
                      float c2, float lr_t, float eps, float clip) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float gv = g[i];
    if (clip > 0.0f) gv = gv < -clip ? -clip : (gv > clip ? clip : gv);
    float mv = b1 * mo[i] + c1 * gv;
    float vv = b2 * v[i] + c2 * gv * gv;
    mo[i] = mv;
    v[i] = vv;
    w[i] = w[i] - lr_t * mv / (sqrtf(vv) + eps);
}

}  // extern "C"
