//! The Transformer on an NVIDIA GPU (`--device cuda`, cargo feature `cuda`): the same
//! model as [`super::Transformer`], step for step, with every buffer on the GPU and
//! every operation a kernel of `src/cuda/kernels.cu`.
//!
//! The kernels repeat the CPU reference's operations in the CPU reference's order (one
//! FMA chain per matrix-product output, 16-lane sums, the same `exp`), so this model
//! computes the CPU model's bits: a file compressed on a GPU decompresses on any CPU
//! and the other way round, and the header needs no backend field. The test
//! `gpu_matches_cpu` checks every probability of every step against the CPU model.
//!
//! The structure mirrors `mod.rs` function for function (`forward_rows`, `backward`,
//! `shift_memory`, `retrain`); the buffers have the CPU model's layouts and offsets.
//! Only symbols go up (a step's inputs, a segment's targets) and only probabilities
//! come down (`B × V` floats per step).
//!
//! # Measured
//!
//! NVIDIA H100 80GB HBM3, driver 580.159, NVRTC 13 (2026-11-26): `gpu_matches_cpu`
//! passes; book1 with `--model transformer -p fast` / `-p default` gives byte-identical
//! files on GPU and CPU, each decoding on the other. Speed on book1: fast 20.2 s,
//! default 34.6 s on the H100, against 12.5 s and 27.1 s on the development machine's
//! CPU (`--stats`: of default's 34.6 s, 18.9 s wait for the forward kernels and the
//! probabilities' copy, 6.6 s queue the forward launches — ~40 per step, each waiting
//! behind the previous step's work on the one stream). The kernels favour plain
//! correctness: a thread per output chain, the row-wise loops (normalization, the
//! 16-lane sums) run by one thread per row with the lane array in local memory, and
//! every step pays launch latency; `large` did not finish book1 in 240 s. The way to
//! speed: warp-wide rows (16 lanes, one per virtual lane, folded by shuffles, as
//! `softmax_rows` does), lane sums in registers, fewer launches (fusing the
//! element-wise kernels, a CUDA graph per step) and a pinned, asynchronous probability
//! copy — all without changing an operation's order, so the bits stay the CPU's.
//!
//! Errors (a lost device, memory) cannot be returned from [`Predictor::predict`]; the
//! first one is kept, later work is skipped, and [`Predictor::check`] reports it — the
//! engine asks at every progress report and at the end of a frame.

use super::steps::Steps;
use super::{LayerParams, Transformer, TransformerConfig, TransformerTimings};
use crate::cuda::{self, Arg, Buffer, Gpu, Kernel, Module};
use crate::model::adam::Adam;
use crate::model::Predictor;
use anyhow::{anyhow, Result};
use std::time::Instant;

/// Threads per block of the element-wise kernels.
const BLOCK: u32 = 256;
/// Columns per block and rows per thread of the matrix-product kernel (see `gemm` in
/// kernels.cu: each thread computes `GEMM_TM` rows of one column).
const GEMM_COLS: u32 = 128;
const GEMM_TM: usize = 4;

/// The kernels of kernels.cu, looked up once.
struct Kernels {
    gemm: Kernel,
    embed: Kernel,
    embed_backward: Kernel,
    rms_forward: Kernel,
    rms_backward_x: Kernel,
    rms_backward_g: Kernel,
    kv_append: Kernel,
    attn_scores: Kernel,
    attn_softmax: Kernel,
    attn_values: Kernel,
    gelu_forward: Kernel,
    gelu_backward: Kernel,
    bias_rows: Kernel,
    softmax_rows: Kernel,
    dlogits: Kernel,
    col_sum: Kernel,
    attn_ds: Kernel,
    rel_backward: Kernel,
    chunk_copy: Kernel,
    adam0: Kernel,
    adam1: Kernel,
    /// The module the kernels live in, unloaded when they are dropped.
    _module: Module,
}

/// One layer's activations; see `LayerAct` in mod.rs for each buffer's meaning.
struct GpuLayerAct {
    r1: Buffer,
    a1: Buffer,
    qkv: Buffer,
    kt: Buffer,
    vc: Buffer,
    p: Buffer,
    ao: Buffer,
    xm: Buffer,
    r2: Buffer,
    a2: Buffer,
    u: Buffer,
    th: Buffer,
    g: Buffer,
}

/// A matrix operand of [`TransformerGpu::gemm`]: a buffer, an element offset, the
/// strides of its two indices, and the strides of the batch index's two parts
/// (`z / zdiv` and `z % zdiv`).
#[derive(Clone, Copy)]
struct Operand<'a> {
    buf: &'a Buffer,
    off: usize,
    s0: usize,
    s1: usize,
    z1: usize,
    z2: usize,
}

fn op(buf: &Buffer, off: usize, s0: usize, s1: usize) -> Operand<'_> {
    Operand { buf, off, s0, s1, z1: 0, z2: 0 }
}

impl<'a> Operand<'a> {
    fn batched(self, z1: usize, z2: usize) -> Operand<'a> {
        Operand { z1, z2, ..self }
    }
}

/// Copies symbols to a device buffer of u32 at element `at`, widened in `scratch`.
fn upload_symbols(buf: &Buffer, at: usize, src: &[u16], scratch: &mut Vec<u32>) -> Result<()> {
    scratch.clear();
    scratch.extend(src.iter().map(|&x| x as u32));
    buf.upload(at, scratch)
}

fn i(x: usize) -> Arg {
    Arg::I(i32::try_from(x).expect("sizes are bounded by the model's float limit"))
}

/// The Transformer predictor on a GPU; see the module docs.
pub struct TransformerGpu {
    gpu: Gpu,
    k: Kernels,
    cfg: TransformerConfig,
    v: usize,
    e: usize,
    dh: usize,
    n: usize,
    m: usize,
    lp: Vec<LayerParams>,
    emb: usize,
    gf: usize,
    w_out: usize,
    b_out: usize,
    /// The parameters' learning-rate multiples, as the CPU model's.
    lr_groups: Vec<(std::ops::Range<usize>, f32)>,
    params: Buffer,
    grads: Buffer,
    /// Adam's moments (`mo` only when β1 > 0); the scalar bookkeeping stays on the host.
    adam_v: Buffer,
    adam_m: Option<Buffer>,
    opt: Adam,
    x: Vec<Buffer>,
    acts: Vec<GpuLayerAct>,
    rf: Buffer,
    af: Buffer,
    probs: Buffer,
    /// Symbols on the device (as u32): each row's input group and target.
    inputs: Buffer,
    targets: Buffer,
    dx: Buffer,
    da: Buffer,
    dqkv: Buffer,
    dao: Buffer,
    dff: Buffer,
    /// Attention backward: `dP` (scaled `dS` after `attn_ds`) and unscaled `dS`, both
    /// `B × H × T × (M+T)`.
    sdp: Buffer,
    sds: Buffer,
    /// Scratch as large as one layer's key cache, for the memory shift.
    tmp: Buffer,
    saved_mem: Buffer,
    // Host state, as in the CPU model.
    st: Steps,
    forwarded: bool,
    mem_valid: usize,
    /// Symbols widened to u32 on their way to `inputs` and `targets`.
    scratch: Vec<u32>,
    timings: TransformerTimings,
    /// The first GPU error; once set, every later call does nothing.
    failed: Option<String>,
}

/// NVRTC's options: no contraction of `a*b+c` into an FMA (Rust never contracts), IEEE
/// division and square root, subnormals kept — the CPU kernels' arithmetic.
const NVRTC_OPTIONS: [&str; 4] = ["--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"];

/// The kernels' source: the constants, with their bits taken from the CPU kernels so
/// that both sides use the same numbers, then kernels.cu.
fn kernel_source() -> String {
    use crate::kernels::scalar as s;
    let f = |name: &str, x: f32| format!("#define {name} __int_as_float({:#010x})\n", x.to_bits());
    let mut src = String::new();
    src += &f("LOG2E", s::LOG2E);
    src += &f("LN2_HI", s::LN2_HI);
    src += &f("LN2_LO", s::LN2_LO);
    src += &f("ROUND_MAGIC", s::ROUND_MAGIC);
    src += &f("EXP_MIN", s::EXP_MIN);
    src += &f("EXP_MAX", s::EXP_MAX);
    src += &f("NEG_INF", f32::NEG_INFINITY);
    for (j, &c) in s::EXP_POLY.iter().enumerate() {
        src += &f(&format!("EXP_P{j}"), c);
    }
    src += &f("GELU_C", super::GELU_C);
    src += &f("GELU_K", super::GELU_K);
    src += &f("GELU_K3", 3.0 * super::GELU_K);
    src += include_str!("../../cuda/kernels.cu");
    src
}

/// Compiles (once per process: NVRTC takes about a second) and loads the kernels for `gpu`.
fn load_kernels(gpu: &Gpu) -> Result<Kernels> {
    /// The PTX of the last compilation, with the compute capability it was made for.
    type Cached = Option<((i32, i32), Vec<u8>)>;
    static PTX: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    let mut cache = PTX.lock().unwrap_or_else(|e| e.into_inner());
    let ptx = match &*cache {
        Some((cap, ptx)) if *cap == gpu.capability => ptx.clone(),
        _ => {
            let (major, minor) = gpu.capability;
            let ptx = cuda::compile_ptx(&kernel_source(), major, minor, &NVRTC_OPTIONS)?;
            *cache = Some((gpu.capability, ptx.clone()));
            ptx
        }
    };
    drop(cache);
    let module = gpu.load_module(&ptx)?;
    let k = |name: &str| module.kernel(name);
    let kernels = Kernels {
        gemm: k("gemm")?,
        embed: k("embed")?,
        embed_backward: k("embed_backward")?,
        rms_forward: k("rms_forward")?,
        rms_backward_x: k("rms_backward_x")?,
        rms_backward_g: k("rms_backward_g")?,
        kv_append: k("kv_append")?,
        attn_scores: k("attn_scores")?,
        attn_softmax: k("attn_softmax")?,
        attn_values: k("attn_values")?,
        gelu_forward: k("gelu_forward")?,
        gelu_backward: k("gelu_backward")?,
        bias_rows: k("bias_rows")?,
        softmax_rows: k("softmax_rows")?,
        dlogits: k("dlogits")?,
        col_sum: k("col_sum")?,
        attn_ds: k("attn_ds")?,
        rel_backward: k("rel_backward")?,
        chunk_copy: k("chunk_copy")?,
        adam0: k("adam0")?,
        adam1: k("adam1")?,
        _module: module,
    };
    Ok(kernels)
}

impl TransformerGpu {
    /// Builds the model on GPU 0 with the CPU model's initial weights.
    pub fn new(cfg: &TransformerConfig, vocab: usize) -> Result<TransformerGpu> {
        // The CPU model validates the configuration and draws the weights; its buffers
        // are dropped once the weights are on the GPU.
        let cpu = Transformer::new(cfg, vocab)?;
        let gpu = Gpu::open(0)?;
        let k = load_kernels(&gpu)?;
        let (l_n, d, h, f, kk, b, t_len) =
            (cfg.layers, cfg.d_model, cfg.heads, cfg.d_ff, cfg.group, cfg.batch, cfg.seg_len);
        let (n, dh, m, v) = (cpu.n, cpu.dh, cpu.m, cpu.v);
        let r = t_len * b;
        let params = gpu.alloc(cpu.params.len())?;
        params.upload(0, &cpu.params)?;
        let acts = (0..l_n)
            .map(|_| {
                Ok(GpuLayerAct {
                    r1: gpu.alloc(r)?,
                    a1: gpu.alloc(r * d)?,
                    qkv: gpu.alloc(r * 3 * d)?,
                    kt: gpu.alloc(b * h * dh * n)?,
                    vc: gpu.alloc(b * h * n * dh)?,
                    p: gpu.alloc(r * h * n)?,
                    ao: gpu.alloc(r * d)?,
                    xm: gpu.alloc(r * d)?,
                    r2: gpu.alloc(r)?,
                    a2: gpu.alloc(r * d)?,
                    u: gpu.alloc(r * f)?,
                    th: gpu.alloc(r * f)?,
                    g: gpu.alloc(r * f)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let n_params = cpu.params.len();
        Ok(TransformerGpu {
            grads: gpu.alloc(n_params)?,
            adam_v: gpu.alloc(n_params)?,
            adam_m: if cfg.beta1 == 0.0 { None } else { Some(gpu.alloc(n_params)?) },
            opt: Adam::new(0, cfg.beta1, cfg.beta2, cfg.adam_eps, cfg.grad_clip),
            params,
            x: (0..=l_n).map(|_| gpu.alloc(r * d)).collect::<Result<Vec<_>>>()?,
            acts,
            rf: gpu.alloc(r)?,
            af: gpu.alloc(r * d)?,
            probs: gpu.alloc(r * v)?,
            inputs: gpu.alloc(r * kk)?,
            targets: gpu.alloc(r)?,
            dx: gpu.alloc(r * d)?,
            da: gpu.alloc(r * d)?,
            dqkv: gpu.alloc(r * 3 * d)?,
            dao: gpu.alloc(r * d)?,
            dff: gpu.alloc(r * f)?,
            sdp: gpu.alloc(b * h * t_len * n)?,
            sds: gpu.alloc(b * h * t_len * n)?,
            tmp: gpu.alloc(b * h * n * dh)?,
            saved_mem: gpu.alloc(2 * l_n * b * m * d)?,
            st: Steps::new(cfg),
            forwarded: false,
            mem_valid: 0,
            scratch: Vec::with_capacity(r * kk),
            timings: TransformerTimings::default(),
            failed: None,
            cfg: cfg.clone(),
            v,
            e: cpu.e,
            dh,
            n,
            m,
            lp: cpu.lp.clone(),
            emb: cpu.emb,
            gf: cpu.gf,
            w_out: cpu.w_out,
            b_out: cpu.b_out,
            lr_groups: cpu.lr_groups.clone(),
            k,
            gpu,
        })
    }

    /// The GPU's name, for reports.
    pub fn device_name(&self) -> &str {
        &self.gpu.name
    }

    /// An element-wise launch over `count` threads.
    fn launch(&self, k: Kernel, count: usize, args: &[Arg]) -> Result<()> {
        let blocks = count.div_ceil(BLOCK as usize) as u32;
        k.launch((blocks, 1, 1), BLOCK, args)
    }

    /// `C (+)= A · B` over `batch` matrices: `C` is `m × n` (row stride `c.s0`), `A`
    /// is `m × k`, `B` is `k × n`, each with the strides of its operand.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        c: Operand,
        a: Operand,
        b: Operand,
        m: usize,
        n: usize,
        k: usize,
        acc: bool,
        batch: usize,
        zdiv: usize,
    ) -> Result<()> {
        let grid = (n.div_ceil(GEMM_COLS as usize) as u32, m.div_ceil(GEMM_TM) as u32, batch as u32);
        self.k.gemm.launch(
            grid,
            GEMM_COLS,
            &[
                Arg::Ptr(c.buf.at(c.off)),
                Arg::Ptr(a.buf.at(a.off)),
                Arg::Ptr(b.buf.at(b.off)),
                i(m),
                i(n),
                i(k),
                i(acc as usize),
                i(a.s0),
                i(a.s1),
                i(b.s0),
                i(b.s1),
                i(c.s0),
                i(zdiv),
                i(a.z1),
                i(a.z2),
                i(b.z1),
                i(b.z2),
                i(c.z1),
                i(c.z2),
            ],
        )
    }

    /// `gemm_nn`, `gemm_tn`, `gemm_nt` of the CPU kernels (same argument order: `C` is
    /// `m × n`, the inner dimension `k`), on buffers with element offsets.
    #[allow(clippy::too_many_arguments)]
    fn gemm_nn(
        &self,
        c: (&Buffer, usize),
        a: (&Buffer, usize),
        b: (&Buffer, usize),
        m: usize,
        k: usize,
        n: usize,
        acc: bool,
    ) -> Result<()> {
        self.gemm(op(c.0, c.1, n, 1), op(a.0, a.1, k, 1), op(b.0, b.1, n, 1), m, n, k, acc, 1, 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_tn(
        &self,
        c: (&Buffer, usize),
        a: (&Buffer, usize),
        b: (&Buffer, usize),
        m: usize,
        k: usize,
        n: usize,
        acc: bool,
    ) -> Result<()> {
        self.gemm(op(c.0, c.1, n, 1), op(a.0, a.1, 1, m), op(b.0, b.1, n, 1), m, n, k, acc, 1, 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_nt(
        &self,
        c: (&Buffer, usize),
        a: (&Buffer, usize),
        b: (&Buffer, usize),
        m: usize,
        k: usize,
        n: usize,
        acc: bool,
    ) -> Result<()> {
        self.gemm(op(c.0, c.1, n, 1), op(a.0, a.1, k, 1), op(b.0, b.1, 1, k), m, n, k, acc, 1, 1)
    }

    fn rms_forward(&self, out: &Buffer, rinv: &Buffer, x: &Buffer, g: usize, r0: usize, rows: usize) -> Result<()> {
        let d = self.cfg.d_model;
        self.launch(
            self.k.rms_forward,
            rows,
            &[
                Arg::Ptr(out.at(0)),
                Arg::Ptr(rinv.at(0)),
                Arg::Ptr(x.at(0)),
                Arg::Ptr(self.params.at(g)),
                i(r0),
                i(rows),
                i(d),
                Arg::F(1.0 / d as f32),
                Arg::F(self.cfg.norm_eps),
            ],
        )
    }

    /// Backward of [`Self::rms_forward`] over all `R` rows: `dx += …`, `grads[g] += …`.
    fn rms_backward(&self, x: &Buffer, rinv: &Buffer, g: usize) -> Result<()> {
        let d = self.cfg.d_model;
        let r = self.cfg.seg_len * self.cfg.batch;
        self.launch(
            self.k.rms_backward_x,
            r,
            &[
                Arg::Ptr(self.dx.at(0)),
                Arg::Ptr(self.da.at(0)),
                Arg::Ptr(x.at(0)),
                Arg::Ptr(rinv.at(0)),
                Arg::Ptr(self.params.at(g)),
                i(r),
                i(d),
                Arg::F(1.0 / d as f32),
            ],
        )?;
        self.launch(
            self.k.rms_backward_g,
            d,
            &[Arg::Ptr(self.grads.at(g)), Arg::Ptr(self.da.at(0)), Arg::Ptr(x.at(0)), Arg::Ptr(rinv.at(0)), i(r), i(d)],
        )
    }

    /// Forward pass of steps `t0..t1`, whose inputs are in `self.inputs`; see mod.rs.
    fn forward_rows(&mut self, t0: usize, t1: usize) -> Result<()> {
        let start = Instant::now();
        let cfg = &self.cfg;
        let (d, h, f, k, b) = (cfg.d_model, cfg.heads, cfg.d_ff, cfg.group, cfg.batch);
        let (e, dh, n, v, m) = (self.e, self.dh, self.n, self.v, self.m);
        let (r0, r1) = (t0 * b, t1 * b);
        let rows = r1 - r0;
        let scale = 1.0 / (dh as f32).sqrt();
        let lo = m - self.mem_valid;
        let p = |off: usize| Arg::Ptr(self.params.at(off));
        self.launch(
            self.k.embed,
            rows * d,
            &[Arg::Ptr(self.x[0].at(0)), p(self.emb), Arg::Ptr(self.inputs.at(0)), i(r0), i(rows), i(k), i(e), i(d)],
        )?;
        for l in 0..cfg.layers {
            let lp = self.lp[l];
            let a = &self.acts[l];
            let (x_in, x_out) = (&self.x[l], &self.x[l + 1]);
            self.rms_forward(&a.a1, &a.r1, x_in, lp.g1, r0, rows)?;
            self.gemm_nn((&a.qkv, r0 * 3 * d), (&a.a1, r0 * d), (&self.params, lp.wqkv), rows, d, 3 * d, false)?;
            let geo = [i(r0), i(rows), i(b), i(h), i(dh), i(d), i(n), i(m)];
            let mut args = vec![Arg::Ptr(a.kt.at(0)), Arg::Ptr(a.vc.at(0)), Arg::Ptr(a.qkv.at(0))];
            args.extend_from_slice(&geo);
            self.launch(self.k.kv_append, rows * d, &args)?;
            let mut args = vec![Arg::Ptr(a.p.at(0)), Arg::Ptr(a.qkv.at(0)), Arg::Ptr(a.kt.at(0)), p(lp.rel)];
            args.extend_from_slice(&geo);
            args.extend_from_slice(&[i(lo), Arg::F(scale)]);
            self.launch(self.k.attn_scores, rows * h * n, &args)?;
            self.launch(
                self.k.attn_softmax,
                rows * h,
                &[Arg::Ptr(a.p.at(0)), i(r0), i(rows), i(b), i(h), i(n), i(m), i(lo)],
            )?;
            let mut args = vec![Arg::Ptr(a.ao.at(0)), Arg::Ptr(a.p.at(0)), Arg::Ptr(a.vc.at(0))];
            args.extend_from_slice(&geo);
            args.push(i(lo));
            self.launch(self.k.attn_values, rows * d, &args)?;
            a.xm.copy_from(r0 * d, x_in, r0 * d, rows * d)?;
            self.gemm_nn((&a.xm, r0 * d), (&a.ao, r0 * d), (&self.params, lp.wo), rows, d, d, true)?;
            self.rms_forward(&a.a2, &a.r2, &a.xm, lp.g2, r0, rows)?;
            self.gemm_nn((&a.u, r0 * f), (&a.a2, r0 * d), (&self.params, lp.w1), rows, d, f, false)?;
            self.launch(
                self.k.gelu_forward,
                rows * f,
                &[Arg::Ptr(a.g.at(r0 * f)), Arg::Ptr(a.th.at(r0 * f)), Arg::Ptr(a.u.at(r0 * f)), i(rows * f)],
            )?;
            x_out.copy_from(r0 * d, &a.xm, r0 * d, rows * d)?;
            self.gemm_nn((x_out, r0 * d), (&a.g, r0 * f), (&self.params, lp.w2), rows, f, d, true)?;
        }
        let l_n = cfg.layers;
        self.rms_forward(&self.af, &self.rf, &self.x[l_n], self.gf, r0, rows)?;
        self.launch(self.k.bias_rows, rows * v, &[Arg::Ptr(self.probs.at(0)), p(self.b_out), i(r0), i(rows), i(v)])?;
        self.gemm_nn((&self.probs, r0 * v), (&self.af, r0 * d), (&self.params, self.w_out), rows, d, v, true)?;
        self.k.softmax_rows.launch((rows as u32, 1, 1), 32, &[Arg::Ptr(self.probs.at(0)), i(r0), i(rows), i(v)])?;
        self.timings.forward_layers += start.elapsed();
        Ok(())
    }

    /// Backward pass over the segment; fills `grads`. See mod.rs.
    fn backward(&mut self) -> Result<()> {
        let start = Instant::now();
        let cfg = &self.cfg;
        let (d, h, f, k, b, t_len) = (cfg.d_model, cfg.heads, cfg.d_ff, cfg.group, cfg.batch, cfg.seg_len);
        let (e, dh, n, v, l_n, m) = (self.e, self.dh, self.n, self.v, cfg.layers, self.m);
        let r = t_len * b;
        let scale = 1.0 / (dh as f32).sqrt();
        let lo = m - self.mem_valid;
        self.grads.fill_bits(0)?;
        upload_symbols(&self.targets, 0, &self.st.targets, &mut self.scratch)?;
        let (pr, gr) = (&self.params, &self.grads);
        self.launch(
            self.k.dlogits,
            r * v,
            &[Arg::Ptr(self.probs.at(0)), Arg::Ptr(self.targets.at(0)), i(r), i(v), Arg::F(1.0 / r as f32)],
        )?;
        self.launch(self.k.col_sum, v, &[Arg::Ptr(gr.at(self.b_out)), Arg::Ptr(self.probs.at(0)), i(r), i(v)])?;
        self.gemm_tn((gr, self.w_out), (&self.af, 0), (&self.probs, 0), d, r, v, false)?;
        self.gemm_nt((&self.da, 0), (&self.probs, 0), (pr, self.w_out), r, v, d, false)?;
        self.dx.fill_bits(0)?;
        self.rms_backward(&self.x[l_n], &self.rf, self.gf)?;
        for l in (0..l_n).rev() {
            let lp = self.lp[l];
            let a = &self.acts[l];
            self.gemm_tn((gr, lp.w2), (&a.g, 0), (&self.dx, 0), f, r, d, false)?;
            self.gemm_nt((&self.dff, 0), (&self.dx, 0), (pr, lp.w2), r, d, f, false)?;
            self.launch(
                self.k.gelu_backward,
                r * f,
                &[Arg::Ptr(self.dff.at(0)), Arg::Ptr(a.u.at(0)), Arg::Ptr(a.th.at(0)), i(r * f)],
            )?;
            self.gemm_tn((gr, lp.w1), (&a.a2, 0), (&self.dff, 0), d, r, f, false)?;
            self.gemm_nt((&self.da, 0), (&self.dff, 0), (pr, lp.w1), r, f, d, false)?;
            self.rms_backward(&a.xm, &a.r2, lp.g2)?;
            self.gemm_tn((gr, lp.wo), (&a.ao, 0), (&self.dx, 0), d, r, d, false)?;
            self.gemm_nt((&self.dao, 0), (&self.dx, 0), (pr, lp.wo), r, d, d, false)?;
            // Attention, batched over z = stream·H + head (z / H = stream, z % H = head).
            let zb = b * h;
            // dP = dO · Vᵀ (T × n per z).
            self.gemm(
                op(&self.sdp, 0, n, 1).batched(h * t_len * n, t_len * n),
                op(&self.dao, 0, b * d, 1).batched(d, dh),
                op(&a.vc, 0, 1, dh).batched(h * n * dh, n * dh),
                t_len,
                n,
                dh,
                false,
                zb,
                h,
            )?;
            self.launch(
                self.k.attn_ds,
                zb * t_len,
                &[
                    Arg::Ptr(self.sdp.at(0)),
                    Arg::Ptr(self.sds.at(0)),
                    Arg::Ptr(a.p.at(0)),
                    i(b),
                    i(h),
                    i(t_len),
                    i(n),
                    Arg::F(scale),
                ],
            )?;
            self.launch(
                self.k.rel_backward,
                h * n,
                &[Arg::Ptr(gr.at(lp.rel)), Arg::Ptr(self.sds.at(0)), i(b), i(h), i(t_len), i(n), i(m), i(lo)],
            )?;
            // dV = Pᵀ · dO, rows M..M+T only (the memory's are dropped), into dqkv's v part.
            self.gemm(
                op(&self.dqkv, 2 * d, b * 3 * d, 1).batched(3 * d, dh),
                op(&a.p, m, 1, b * h * n).batched(h * n, n),
                op(&self.dao, 0, b * d, 1).batched(d, dh),
                t_len,
                dh,
                t_len,
                false,
                zb,
                h,
            )?;
            // dQ = dS · K into dqkv's q part.
            self.gemm(
                op(&self.dqkv, 0, b * 3 * d, 1).batched(3 * d, dh),
                op(&self.sdp, 0, n, 1).batched(h * t_len * n, t_len * n),
                op(&a.kt, 0, 1, n).batched(h * n * dh, n * dh),
                t_len,
                dh,
                n,
                false,
                zb,
                h,
            )?;
            // dK = dSᵀ · Q, rows M..M+T only, into dqkv's k part.
            self.gemm(
                op(&self.dqkv, d, b * 3 * d, 1).batched(3 * d, dh),
                op(&self.sdp, m, 1, n).batched(h * t_len * n, t_len * n),
                op(&a.qkv, 0, b * 3 * d, 1).batched(3 * d, dh),
                t_len,
                dh,
                t_len,
                false,
                zb,
                h,
            )?;
            self.gemm_tn((gr, lp.wqkv), (&a.a1, 0), (&self.dqkv, 0), d, r, 3 * d, false)?;
            self.gemm_nt((&self.da, 0), (&self.dqkv, 0), (pr, lp.wqkv), r, 3 * d, d, false)?;
            self.rms_backward(&self.x[l], &a.r1, lp.g1)?;
        }
        self.launch(
            self.k.embed_backward,
            e,
            &[Arg::Ptr(gr.at(self.emb)), Arg::Ptr(self.dx.at(0)), Arg::Ptr(self.inputs.at(0)), i(r), i(k), i(e), i(d)],
        )?;
        self.timings.backward_layers += start.elapsed();
        Ok(())
    }

    /// Copies `len` elements of each of `chunks` chunks between strided buffers.
    #[allow(clippy::too_many_arguments)]
    fn chunk_copy(
        &self,
        dst: (&Buffer, usize),
        src: (&Buffer, usize),
        chunks: usize,
        len: usize,
        dst_stride: usize,
        src_stride: usize,
    ) -> Result<()> {
        self.launch(
            self.k.chunk_copy,
            chunks * len,
            &[Arg::Ptr(dst.0.at(dst.1)), Arg::Ptr(src.0.at(src.1)), i(chunks), i(len), i(dst_stride), i(src_stride)],
        )
    }

    /// The segment's keys and values become the memory of the next segment.
    fn shift_memory(&mut self) -> Result<()> {
        let t_len = self.cfg.seg_len;
        let (n, dh) = (self.n, self.dh);
        for a in &self.acts {
            for (c, unit) in [(&a.kt, 1), (&a.vc, dh)] {
                // Chunks of n positions (`unit` floats each): one per stream, head and
                // key element in `kt`, one per stream and head in `vc`. Overlapping
                // ranges: through the scratch buffer.
                let (chunk, keep) = (n * unit, (n - t_len) * unit);
                let chunks = c.len() / chunk;
                self.chunk_copy((&self.tmp, 0), (c, t_len * unit), chunks, keep, chunk, chunk)?;
                self.chunk_copy((c, 0), (&self.tmp, 0), chunks, keep, chunk, chunk)?;
            }
        }
        self.mem_valid = (self.mem_valid + t_len).min(self.m);
        Ok(())
    }

    fn train_segment(&mut self, lr: f32) -> Result<()> {
        self.backward()?;
        let start = Instant::now();
        let lr_t = self.opt.next_step_size(lr);
        let (b1, b2, eps, clip) = (self.cfg.beta1, self.cfg.beta2, self.cfg.adam_eps, self.cfg.grad_clip);
        // One launch per range of parameters, at its multiple of the step size, computed
        // as the CPU's Adam::step_groups computes it.
        for (range, mult) in &self.lr_groups {
            let (at, count, lr_g) = (range.start, range.len(), lr_t * mult);
            if count == 0 {
                continue;
            }
            match &self.adam_m {
                None => self.launch(
                    self.k.adam0,
                    count,
                    &[
                        Arg::Ptr(self.params.at(at)),
                        Arg::Ptr(self.adam_v.at(at)),
                        Arg::Ptr(self.grads.at(at)),
                        i(count),
                        Arg::F(b2),
                        Arg::F(1.0 - b2),
                        Arg::F(lr_g),
                        Arg::F(eps),
                        Arg::F(clip),
                    ],
                )?,
                Some(mo) => self.launch(
                    self.k.adam1,
                    count,
                    &[
                        Arg::Ptr(self.params.at(at)),
                        Arg::Ptr(mo.at(at)),
                        Arg::Ptr(self.adam_v.at(at)),
                        Arg::Ptr(self.grads.at(at)),
                        i(count),
                        Arg::F(b1),
                        Arg::F(1.0 - b1),
                        Arg::F(b2),
                        Arg::F(1.0 - b2),
                        Arg::F(lr_g),
                        Arg::F(eps),
                        Arg::F(clip),
                    ],
                )?,
            }
        }
        self.timings.optimizer += start.elapsed();
        self.shift_memory()
    }

    /// Saves (`save`) or restores the coding pass's memory around a retraining pass.
    fn swap_memory(&self, save: bool) -> Result<()> {
        let (n, dh, m) = (self.n, self.dh, self.m);
        let mut off = 0;
        for a in &self.acts {
            for (c, unit) in [(&a.kt, 1), (&a.vc, dh)] {
                let (chunk, mem) = (n * unit, m * unit);
                let chunks = c.len() / chunk;
                if save {
                    self.chunk_copy((&self.saved_mem, off), (c, 0), chunks, mem, mem, chunk)?;
                } else {
                    self.chunk_copy((c, 0), (&self.saved_mem, off), chunks, mem, chunk, mem)?;
                }
                off += chunks * mem;
            }
        }
        Ok(())
    }

    fn retrain(&mut self) -> Result<()> {
        let start = Instant::now();
        let t_len = self.cfg.seg_len;
        self.swap_memory(true)?;
        let saved_valid = self.mem_valid;
        self.mem_valid = 0;
        for seg in 0..self.st.retrain_segments(&self.cfg) {
            let lr = self.st.load_retrain_segment(&self.cfg, seg);
            upload_symbols(&self.inputs, 0, &self.st.inputs, &mut self.scratch)?;
            self.forward_rows(0, t_len)?;
            self.train_segment(lr)?;
        }
        self.swap_memory(false)?;
        self.mem_valid = saved_valid;
        self.timings.retrain += start.elapsed();
        Ok(())
    }

    fn forward_step(&mut self) -> Result<()> {
        self.st.begin_step(&self.cfg);
        let rows = self.st.step_rows(&self.cfg);
        upload_symbols(&self.inputs, rows.start, &self.st.inputs[rows], &mut self.scratch)?;
        let t = self.st.t;
        self.forward_rows(t, t + 1)?;
        self.forwarded = true;
        Ok(())
    }

    fn try_predict(&mut self, probs: &mut [f32]) -> Result<()> {
        if !self.forwarded {
            self.forward_step()?;
        }
        let n = self.cfg.batch * self.v;
        let len = probs.len().min(n);
        let start = Instant::now();
        self.probs.download(self.st.t * n, &mut probs[..len])?;
        self.timings.forward_output += start.elapsed();
        Ok(())
    }

    fn try_update(&mut self, symbols: &[u16]) -> Result<()> {
        if !self.forwarded {
            self.forward_step()?;
        }
        self.forwarded = false;
        if let Some(end) = self.st.record(&self.cfg, self.v, symbols) {
            self.train_segment(end.lr)?;
            if end.retrain {
                self.retrain()?;
            }
        }
        Ok(())
    }

    /// The parameters, copied from the GPU (for tests).
    pub fn params(&self) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.params.len()];
        self.params.download(0, &mut out)?;
        Ok(out)
    }
}

impl Predictor for TransformerGpu {
    fn vocab_size(&self) -> usize {
        self.v
    }

    fn batch(&self) -> usize {
        self.cfg.batch
    }

    fn predict(&mut self, probs: &mut [f32]) {
        if self.failed.is_none() {
            if let Err(e) = self.try_predict(probs) {
                self.failed = Some(format!("{e:#}"));
            }
        }
    }

    fn update(&mut self, symbols: &[u16]) {
        if self.failed.is_none() {
            if let Err(e) = self.try_update(symbols) {
                self.failed = Some(format!("{e:#}"));
            }
        }
    }

    fn check(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(e) => Err(anyhow!("the GPU failed: {e}")),
        }
    }

    fn time_breakdown(&self) -> Vec<(&'static str, f64)> {
        // Kernels run asynchronously: the forward time is mostly in the probabilities'
        // download, which waits for them.
        let t = &self.timings;
        vec![
            ("queue forward", t.forward_layers.as_secs_f64()),
            ("wait + download probabilities", t.forward_output.as_secs_f64()),
            ("queue backward", t.backward_layers.as_secs_f64()),
            ("queue optimizer", t.optimizer.as_secs_f64()),
            ("retrain (all phases)", t.retrain.as_secs_f64()),
        ]
    }
}

#[cfg(test)]
mod tests {
    //! These run only where a GPU is: elsewhere they print why and pass (the CPU model
    //! is tested on its own; CI has no GPU). On a GPU they check the GPU model's bits
    //! against the CPU model's at every step.
    use super::super::tests::{small, symbols};
    use super::*;

    fn dl(b: &Buffer) -> Vec<f32> {
        let mut out = vec![0.0; b.len()];
        b.download(0, &mut out).unwrap();
        out
    }

    /// Where two models' state differs: every activation buffer, then the gradient and
    /// the weights block by block (to point at the kernel when the bits part).
    fn diagnose(cpu: &Transformer, gpu: &TransformerGpu) -> String {
        let mut out = String::new();
        let mut cmp = |name: String, a: &[f32], b: &[f32]| {
            if let Some(i) = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits()) {
                out += &format!("  {name}: first difference at {i} of {} ({} vs {})\n", a.len(), a[i], b[i]);
            }
        };
        for (l, x) in cpu.x.iter().enumerate() {
            cmp(format!("x[{l}]"), x, &dl(&gpu.x[l]));
        }
        for (l, (a, g)) in cpu.acts.iter().zip(&gpu.acts).enumerate() {
            let pairs: [(&str, &Vec<f32>, &Buffer); 13] = [
                ("r1", &a.r1, &g.r1),
                ("a1", &a.a1, &g.a1),
                ("qkv", &a.qkv, &g.qkv),
                ("kt", &a.kt, &g.kt),
                ("vc", &a.vc, &g.vc),
                ("p", &a.p, &g.p),
                ("ao", &a.ao, &g.ao),
                ("xm", &a.xm, &g.xm),
                ("r2", &a.r2, &g.r2),
                ("a2", &a.a2, &g.a2),
                ("u", &a.u, &g.u),
                ("th", &a.th, &g.th),
                ("g", &a.g, &g.g),
            ];
            for (name, c, d) in pairs {
                cmp(format!("layer {l} {name}"), c, &dl(d));
            }
        }
        cmp("af".into(), &cpu.af, &dl(&gpu.af));
        cmp("probs".into(), &cpu.probs, &dl(&gpu.probs));
        cmp("dx".into(), &cpu.dx, &dl(&gpu.dx));
        let (gc, gg, wc, wg) = (&cpu.grads, dl(&gpu.grads), &cpu.params, dl(&gpu.params));
        let mut blocks = vec![("emb".to_string(), cpu.emb, cpu.lp[0].g1)];
        for (l, p) in cpu.lp.iter().enumerate() {
            for (name, lo, hi) in [
                ("g1", p.g1, p.wqkv),
                ("wqkv", p.wqkv, p.wo),
                ("wo", p.wo, p.rel),
                ("rel", p.rel, p.g2),
                ("g2", p.g2, p.w1),
                ("w1", p.w1, p.w2),
                ("w2", p.w2, p.w2 + cpu.cfg.d_ff * cpu.cfg.d_model),
            ] {
                blocks.push((format!("layer {l} {name}"), lo, hi));
            }
        }
        blocks.push(("gf".into(), cpu.gf, cpu.w_out));
        blocks.push(("w_out".into(), cpu.w_out, cpu.b_out));
        blocks.push(("b_out".into(), cpu.b_out, cpu.params.len()));
        for (name, lo, hi) in blocks {
            cmp(format!("grad {name}"), &gc[lo..hi], &gg[lo..hi]);
            cmp(format!("weight {name}"), &wc[lo..hi], &wg[lo..hi]);
        }
        out
    }

    /// Runs CPU and GPU side by side for `steps` steps; returns the first step whose
    /// probabilities differ, with the largest difference there.
    fn compare(cfg: &TransformerConfig, v: usize, steps: usize) -> Option<(usize, f32)> {
        let mut gpu = match TransformerGpu::new(cfg, v) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("no GPU model ({e:#}); skipped");
                return None;
            }
        };
        let mut cpu = Transformer::new(cfg, v).unwrap();
        let b = cfg.batch;
        let (mut p1, mut p2) = (vec![0.0f32; b * v], vec![0.0f32; b * v]);
        for (step, syms) in symbols(7, b * steps, v).chunks(b).enumerate() {
            cpu.predict(&mut p1);
            gpu.predict(&mut p2);
            gpu.check().unwrap();
            if p1.iter().zip(&p2).any(|(x, y)| x.to_bits() != y.to_bits()) {
                let worst = p1.iter().zip(&p2).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
                eprintln!("step {step} (t = {}), where the state differs:\n{}", cpu.st.t, diagnose(&cpu, &gpu));
                return Some((step, worst));
            }
            cpu.update(syms);
            gpu.update(syms);
        }
        gpu.check().unwrap();
        let (w1, w2) = (cpu.params.clone(), gpu.params().unwrap());
        assert!(w1.iter().zip(&w2).all(|(x, y)| x.to_bits() == y.to_bits()), "weights differ after {steps} steps");
        None
    }

    /// Compiling needs NVRTC but no GPU: where NVRTC is found, the source must compile.
    #[test]
    fn kernels_compile() {
        match cuda::compile_ptx(&kernel_source(), 9, 0, &NVRTC_OPTIONS) {
            Ok(ptx) => assert!(String::from_utf8_lossy(&ptx).contains(".entry gemm")),
            Err(e) if format!("{e:#}").contains("was not found") => eprintln!("{e:#}; skipped"),
            Err(e) => panic!("{e:#}"),
        }
    }

    #[test]
    fn gpu_matches_cpu() {
        let tiny = TransformerConfig::preset("tiny").unwrap();
        let small = TransformerConfig { retrain_every: 8, retrain_len: 12, beta1: 0.5, grad_clip: 0.01, ..small() };
        let fast = TransformerConfig { batch: 4, ..TransformerConfig::preset("fast").unwrap() };
        for (name, cfg, v, steps) in [("tiny", &tiny, 11, 60), ("small", &small, 13, 61), ("fast", &fast, 300, 80)] {
            if let Some((step, worst)) = compare(cfg, v, steps) {
                panic!("{name}: GPU and CPU probabilities differ first at step {step} (by up to {worst:e})");
            }
        }
    }
}
