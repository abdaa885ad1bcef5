//! Linear-layer weights packed once, at load, into panels of 32 output columns, and the CPU
//! f32 product `x W + b` over them with AVX-512 or AVX2/FMA kernels chosen at run time. The
//! weights are kept in f32, bf16 or f16 ([`Precision`]); a half-precision weight is widened
//! to f32 as the kernel reads it (exactly: every bf16 and f16 value is an f32 value), so the
//! products are the same sums over half the memory.
//!
//! `gemm` packs the weight again on every call and vectorises along the rows of `x`, which
//! wastes most of its work when a product has few rows (decoding steps, short batches). Here the
//! weight is packed once and the kernels vectorise along the output columns.
//!
//! Every output is one fused multiply-add chain over the inner dimension, in index order,
//! starting from zero, with the bias added last. So a row's result does not depend on how many
//! rows share the product, on how the work is split between threads, or on which kernel ran: an
//! AVX-512 machine and an AVX2 one give the same bits.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Output columns per panel.
const NR: usize = 32;
/// Rows of `x` per kernel call (the AVX-512 kernel keeps 12 × 2 accumulators in registers).
const MR: usize = 12;
/// Rows per pass over all panels: a pass's rows of `x` stay in the L2 cache.
const ROWS_PER_PASS: usize = 20 * MR;
/// Inner positions per sweep over the panels: a longer inner dimension is taken in slices of
/// this many, so that a pass's rows of `x` stay in the L2 cache (the partial sums wait in the
/// output and their chains go on from there, in the same order).
const KC: usize = 1024;

/// The vector instructions a kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F.
    Avx512,
    /// AVX2 with FMA (and F16C).
    Avx2,
}

impl Isa {
    /// The best kernel this CPU runs, if any.
    pub fn detect() -> Option<Isa> {
        Isa::available().into_iter().next()
    }

    /// Every kernel this CPU runs, best first.
    pub fn available() -> Vec<Isa> {
        let mut isas = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
            // F16C widens f16 weights; every AVX2 CPU has it.
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                isas.push(Isa::Avx2);
            }
        }
        isas
    }

    /// Name for benchmark records.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "AVX-512",
            Isa::Avx2 => "AVX2",
        }
    }
}

/// How a packed weight keeps its values. Products always accumulate in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// bfloat16: the top 16 bits of an f32 (rounded to nearest even when packed).
    Bf16,
    /// IEEE half precision (rounded to nearest even when packed; widened with F16C).
    F16,
}

impl Precision {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::Bf16 | Precision::F16 => 2,
        }
    }

    /// The value as stored: its bits in the low `8 · size()` bits.
    pub fn encode(self, v: f32) -> u32 {
        match self {
            Precision::F32 => v.to_bits(),
            Precision::Bf16 => u32::from(bf16_bits(v)),
            Precision::F16 => u32::from(f16_bits(v)),
        }
    }

    /// The stored bits as the f32 the kernels read.
    pub fn decode(self, bits: u32) -> f32 {
        match self {
            Precision::F32 => f32::from_bits(bits),
            Precision::Bf16 => f32::from_bits(bits << 16),
            Precision::F16 => f16_value(bits as u16),
        }
    }

    fn code(self) -> u8 {
        match self {
            Precision::F32 => 0,
            Precision::Bf16 => 1,
            Precision::F16 => 2,
        }
    }
}

/// f32 → bfloat16 bits, rounded to nearest even (NaN stays NaN).
fn bf16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    if v.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    let round = ((b >> 16) & 1) + 0x7fff;
    (b.wrapping_add(round) >> 16) as u16
}

/// f32 → IEEE half bits, rounded to nearest even (overflow to infinity, NaN stays NaN).
fn f16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let (kept, rem, halfway) = if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        (m >> shift, m & ((1 << shift) - 1), 1u32 << (shift - 1))
    } else {
        (((e as u32) << 10) | (man >> 13), man & 0x1fff, 0x1000)
    };
    let up = rem > halfway || (rem == halfway && kept & 1 == 1);
    sign | (kept + u32::from(up)) as u16
}

/// IEEE half bits → f32 (exact).
fn f16_value(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            let (mut e, mut m) = (113u32, man);
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// One 64-byte-aligned cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A `[K, N]` weight in panels: panel `p` holds columns `32p..32p+32` for every row `l` in
/// turn (zero beyond `N`), each value in the weight's [`Precision`].
pub struct PackedWeight {
    k: usize,
    n: usize,
    isa: Isa,
    precision: Precision,
    lines: Vec<Line>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedWeight[{}x{}, {:?}, {:?}]",
            self.k, self.n, self.precision, self.isa
        )
    }
}

impl PackedWeight {
    /// Pack a `[K, N]` weight stored row by row (`[K, N]`, as GPT-2's Conv1D keeps it).
    pub fn from_rows(
        data: &[f32],
        k: usize,
        n: usize,
        isa: Isa,
        precision: Precision,
    ) -> PackedWeight {
        PackedWeight::pack(data, (k, n), isa, precision, 1, n)
    }

    /// Pack a `[K, N]` weight stored column by column (`[N, K]`, as `nn.Linear` keeps it).
    pub fn from_columns(
        data: &[f32],
        k: usize,
        n: usize,
        isa: Isa,
        precision: Precision,
    ) -> PackedWeight {
        PackedWeight::pack(data, (k, n), isa, precision, k, 1)
    }

    fn pack(
        data: &[f32],
        (k, n): (usize, usize),
        isa: Isa,
        precision: Precision,
        col_stride: usize,
        row_stride: usize,
    ) -> PackedWeight {
        assert_eq!(
            data.len(),
            k * n,
            "a {k} x {n} weight needs {} values",
            k * n
        );
        // The kernels' safety rests on this.
        assert!(
            Isa::available().contains(&isa),
            "this CPU does not run {isa:?}"
        );
        let panels = n.div_ceil(NR);
        let size = precision.size();
        let mut lines = vec![Line([0; 64]); (panels * k * NR * size).div_ceil(64)];
        for p in 0..panels {
            for c in 0..NR.min(n - p * NR) {
                let col = p * NR + c;
                for l in 0..k {
                    let at = ((p * k + l) * NR + c) * size;
                    let bits = precision.encode(data[col * col_stride + l * row_stride]);
                    let bytes = bits.to_le_bytes();
                    lines[at / 64].0[at % 64..at % 64 + size].copy_from_slice(&bytes[..size]);
                }
            }
        }
        PackedWeight {
            k,
            n,
            isa,
            precision,
            lines,
        }
    }

    /// The weight as the kernels read it: `[K, N]` row by row, in f32.
    pub fn unpack(&self) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        let size = self.precision.size();
        let mut out = vec![0f32; k * n];
        for (i, v) in out.iter_mut().enumerate() {
            let (l, col) = (i / n, i % n);
            let at = (((col / NR) * k + l) * NR + col % NR) * size;
            let mut bytes = [0u8; 4];
            bytes[..size].copy_from_slice(&self.lines[at / 64].0[at % 64..at % 64 + size]);
            *v = self.precision.decode(u32::from_le_bytes(bytes));
        }
        out
    }

    /// How the values are kept.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Inner dimension `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output columns `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The kernel this weight was packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The first byte of panel `p`.
    fn panel(&self, p: usize) -> *const u8 {
        let bytes = p * self.k * NR * self.precision.size();
        // In bounds: the lines hold every panel's `k · NR` values.
        self.lines.as_ptr().cast::<u8>().wrapping_add(bytes)
    }

    /// `x W (+ bias)` for the rows of `x` (`m × K`, row-major) as a new `m × N` buffer, which is
    /// written once and never zeroed first.
    ///
    /// # Panics
    /// When the lengths do not fit `K` and `N`.
    pub fn product(&self, x: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        assert!(
            k > 0 && x.len().is_multiple_of(k),
            "rows of {k} values expected"
        );
        assert!(
            bias.is_none_or(|b| b.len() == n),
            "bias of {n} values expected"
        );
        let len = x.len() / k * n;
        let mut y = Vec::with_capacity(len);
        // SAFETY: the capacity holds the `m × N` outputs, and `product_into` writes every one
        // of them before `set_len` makes them readable.
        unsafe {
            self.product_into(x, bias, y.as_mut_ptr());
            y.set_len(len);
        }
        y
    }

    /// Writes every output of `x W (+ bias)` to `y`, reading back only outputs it wrote itself.
    ///
    /// # Safety
    /// `y` is valid for writes (and reads of written values) of `x.len() / K × N` floats.
    unsafe fn product_into(&self, x: &[f32], bias: Option<&[f32]>, y: *mut f32) {
        let (k, n) = (self.k, self.n);
        let m = x.len() / k;
        let panels = n.div_ceil(NR);
        let out = SharedOut(y);
        for first in (0..m).step_by(ROWS_PER_PASS) {
            let rows = ROWS_PER_PASS.min(m - first);
            let xs = interleave(&x[first * k..(first + rows) * k], rows, k);
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                let resume = k0 > 0;
                let bias = bias.filter(|_| k0 + kc == k);
                (0..panels).into_par_iter().for_each(|p| {
                    let out = &out;
                    let bias = bias.map(|b| &b[p * NR..]);
                    let mut tile = [[0f32; NR]; MR];
                    let cols = NR.min(n - p * NR);
                    for block in 0..rows.div_ceil(MR) {
                        let r0 = block * MR;
                        let mr = MR.min(rows - r0);
                        let at = |r: usize| (first + r0 + r) * n + p * NR;
                        if resume {
                            for (r, tile_row) in tile.iter_mut().enumerate().take(mr) {
                                // SAFETY: this task alone touches its (row, panel) outputs,
                                // which it wrote in the previous slice.
                                let src =
                                    unsafe { std::slice::from_raw_parts(out.0.add(at(r)), cols) };
                                tile_row[..cols].copy_from_slice(src);
                            }
                        }
                        // SAFETY: `xs` holds `rows.div_ceil(MR) · k · MR` floats and the panel
                        // `k · NR` values, so the slice from `k0` holds `kc · MR` and `kc · NR`;
                        // the detected ISA was checked when packing.
                        unsafe {
                            kernel(
                                (self.isa, self.precision),
                                mr,
                                kc,
                                xs[(block * k + k0) * MR..].as_ptr(),
                                self.panel(p).add(k0 * NR * self.precision.size()),
                                &mut tile,
                                resume,
                            );
                        }
                        for (r, tile_row) in tile.iter().enumerate().take(mr) {
                            // SAFETY: each (row, panel) output range is used by one task only,
                            // and the caller's `y` holds it (as yet unwritten memory here).
                            let dst = unsafe {
                                std::slice::from_raw_parts_mut(
                                    out.0.add(at(r)).cast::<MaybeUninit<f32>>(),
                                    cols,
                                )
                            };
                            match bias {
                                Some(b) => {
                                    for ((d, &v), &b) in dst.iter_mut().zip(tile_row).zip(b) {
                                        d.write(v + b);
                                    }
                                }
                                None => {
                                    for (d, &v) in dst.iter_mut().zip(tile_row) {
                                        d.write(v);
                                    }
                                }
                            }
                        }
                    }
                });
            }
        }
    }
}

/// The output buffer shared by the panel tasks, each writing its own columns.
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint ranges and the buffer outlives the parallel loop.
unsafe impl Sync for SharedOut {}

/// Rows of `x` in blocks of [`MR`], each block stored position by position
/// (`[block][l][row]`, zero rows past the end), so a kernel reads one stream.
fn interleave(x: &[f32], rows: usize, k: usize) -> Vec<f32> {
    let mut xs = vec![0f32; rows.div_ceil(MR) * k * MR];
    xs.par_chunks_mut(k * MR)
        .zip(x.par_chunks(k * MR))
        .for_each(|(block, x)| {
            for (row, x) in x.chunks(k).enumerate() {
                for (l, &v) in x.iter().enumerate() {
                    block[l * MR + row] = v;
                }
            }
        });
    xs
}

/// One block of `mr` rows against `k` positions of one panel into `tile`; with `resume` the
/// sums go on from the tile's values, else they start from zero.
///
/// # Safety
/// `x` holds `k · MR` floats, `b` holds `k · NR` values of `precision`, and the CPU runs `isa`.
unsafe fn kernel(
    (isa, precision): (Isa, Precision),
    mr: usize,
    k: usize,
    x: *const f32,
    b: *const u8,
    tile: &mut [[f32; NR]; MR],
    resume: bool,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract; the AVX2 halves stay within the block's `MR` rows and the
    // panel's `NR` columns.
    unsafe {
        match isa {
            Isa::Avx512 => x86::avx512_block(precision.code(), mr, k, x, b, tile, resume),
            Isa::Avx2 => {
                // Four calls of at most 6 rows × 16 columns (16 vector registers).
                for (row, rows) in [(0, mr.min(6)), (6, mr.saturating_sub(6))] {
                    for half in [0, 16] {
                        let tile = &mut tile[row..];
                        let b = b.add(half * precision.size());
                        x86::avx2_block(
                            precision.code(),
                            rows,
                            k,
                            x.add(row),
                            b,
                            tile,
                            half,
                            resume,
                        );
                    }
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, precision, mr, k, x, b, tile, resume);
        unreachable!("no packed kernels on this architecture");
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// `mr` (≤ 12) rows against a whole panel of values of precision code `p` (0 f32, 1 bf16,
    /// 2 f16).
    ///
    /// # Safety
    /// As [`super::kernel`], with AVX-512F present.
    pub unsafe fn avx512_block(
        p: u8,
        mr: usize,
        k: usize,
        x: *const f32,
        b: *const u8,
        tile: &mut [[f32; NR]; MR],
        resume: bool,
    ) {
        macro_rules! rows {
            ($p:literal) => {
                match mr {
                    1 => avx512::<1, $p>(k, x, b, tile, resume),
                    2 => avx512::<2, $p>(k, x, b, tile, resume),
                    3 => avx512::<3, $p>(k, x, b, tile, resume),
                    4 => avx512::<4, $p>(k, x, b, tile, resume),
                    5 => avx512::<5, $p>(k, x, b, tile, resume),
                    6 => avx512::<6, $p>(k, x, b, tile, resume),
                    7 => avx512::<7, $p>(k, x, b, tile, resume),
                    8 => avx512::<8, $p>(k, x, b, tile, resume),
                    9 => avx512::<9, $p>(k, x, b, tile, resume),
                    10 => avx512::<10, $p>(k, x, b, tile, resume),
                    11 => avx512::<11, $p>(k, x, b, tile, resume),
                    _ => avx512::<12, $p>(k, x, b, tile, resume),
                }
            };
        }
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match p {
                0 => rows!(0),
                1 => rows!(1),
                _ => rows!(2),
            }
        }
    }

    /// Row `l` of a panel (32 values of precision code `P`) as two vectors of 16 floats.
    ///
    /// # Safety
    /// `b` holds `(l + 1) · NR` values, its rows 64-byte aligned; AVX-512F present.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_row<const P: u8>(b: *const u8, l: usize) -> (__m512, __m512) {
        // SAFETY: the caller's contract.
        unsafe {
            if P == 0 {
                let row = b.add(l * NR * 4).cast::<f32>();
                (_mm512_load_ps(row), _mm512_load_ps(row.add(16)))
            } else {
                let v = _mm512_load_si512(b.add(l * NR * 2).cast());
                let (lo, hi) = (_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
                if P == 1 {
                    (
                        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(lo))),
                        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(hi))),
                    )
                } else {
                    (_mm512_cvtph_ps(lo), _mm512_cvtph_ps(hi))
                }
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512<const R: usize, const P: u8>(
        k: usize,
        x: *const f32,
        b: *const u8,
        tile: &mut [[f32; NR]; MR],
        resume: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        if resume {
            for (acc, row) in acc.iter_mut().zip(tile.iter()) {
                // SAFETY: a tile row holds `NR` = 32 floats.
                unsafe {
                    acc[0] = _mm512_loadu_ps(row.as_ptr());
                    acc[1] = _mm512_loadu_ps(row.as_ptr().add(16));
                }
            }
        }
        for l in 0..k {
            // SAFETY: `b` holds `k · NR` values, 64-byte aligned per row; `x` holds `k · MR`.
            unsafe {
                let (b0, b1) = avx512_row::<P>(b, l);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*x.add(l * MR + r));
                    acc[0] = _mm512_fmadd_ps(a, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(a, b1, acc[1]);
                }
            }
        }
        for (row, acc) in tile.iter_mut().zip(&acc) {
            // SAFETY: a tile row holds `NR` = 32 floats.
            unsafe {
                _mm512_storeu_ps(row.as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(row.as_mut_ptr().add(16), acc[1]);
            }
        }
    }

    /// `rows` (≤ 6) rows starting at `x` against 16 columns of a panel starting at `b`, into
    /// columns `col..col + 16` of `tile`; values of precision code `p`.
    ///
    /// # Safety
    /// As [`super::kernel`], with AVX2, FMA and F16C present; `col` is 0 or 16.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx2_block(
        p: u8,
        rows: usize,
        k: usize,
        x: *const f32,
        b: *const u8,
        tile: &mut [[f32; NR]],
        col: usize,
        resume: bool,
    ) {
        macro_rules! rows {
            ($p:literal) => {
                match rows {
                    0 => {}
                    1 => avx2::<1, $p>(k, x, b, tile, col, resume),
                    2 => avx2::<2, $p>(k, x, b, tile, col, resume),
                    3 => avx2::<3, $p>(k, x, b, tile, col, resume),
                    4 => avx2::<4, $p>(k, x, b, tile, col, resume),
                    5 => avx2::<5, $p>(k, x, b, tile, col, resume),
                    _ => avx2::<6, $p>(k, x, b, tile, col, resume),
                }
            };
        }
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match p {
                0 => rows!(0),
                1 => rows!(1),
                _ => rows!(2),
            }
        }
    }

    /// Sixteen values of row `l` of a panel (from `b`, precision code `P`) as two vectors of
    /// 8 floats.
    ///
    /// # Safety
    /// `b` holds 16 values of `l + 1` panel rows, 32-byte aligned; AVX2 and F16C present.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn avx2_row<const P: u8>(b: *const u8, l: usize) -> (__m256, __m256) {
        // SAFETY: the caller's contract.
        unsafe {
            if P == 0 {
                let row = b.add(l * NR * 4).cast::<f32>();
                (_mm256_load_ps(row), _mm256_load_ps(row.add(8)))
            } else {
                let v = _mm256_load_si256(b.add(l * NR * 2).cast());
                let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
                if P == 1 {
                    (
                        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(lo))),
                        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(hi))),
                    )
                } else {
                    (_mm256_cvtph_ps(lo), _mm256_cvtph_ps(hi))
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn avx2<const R: usize, const P: u8>(
        k: usize,
        x: *const f32,
        b: *const u8,
        tile: &mut [[f32; NR]],
        col: usize,
        resume: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        if resume {
            for (acc, row) in acc.iter_mut().zip(tile.iter()) {
                // SAFETY: `col` is 0 or 16 and a tile row holds `NR` = 32 floats.
                unsafe {
                    acc[0] = _mm256_loadu_ps(row.as_ptr().add(col));
                    acc[1] = _mm256_loadu_ps(row.as_ptr().add(col + 8));
                }
            }
        }
        for l in 0..k {
            // SAFETY: `b` holds 16 columns of `k` panel rows, 32-byte aligned; `x` `k · MR`.
            unsafe {
                let (b0, b1) = avx2_row::<P>(b, l);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm256_set1_ps(*x.add(l * MR + r));
                    acc[0] = _mm256_fmadd_ps(a, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(a, b1, acc[1]);
                }
            }
        }
        for (row, acc) in tile.iter_mut().zip(&acc) {
            // SAFETY: `col` is 0 or 16 and a tile row holds `NR` = 32 floats.
            unsafe {
                _mm256_storeu_ps(row.as_mut_ptr().add(col), acc[0]);
                _mm256_storeu_ps(row.as_mut_ptr().add(col + 8), acc[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// The defining sum: a fused multiply-add chain in index order, then the bias.
    fn reference(x: &[f32], w: &[f32], bias: Option<&[f32]>, k: usize, n: usize) -> Vec<f32> {
        let m = x.len() / k;
        let mut y = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let mut acc = 0f32;
                for l in 0..k {
                    acc = x[r * k + l].mul_add(w[l * n + c], acc);
                }
                y[r * n + c] = bias.map_or(acc, |b| acc + b[c]);
            }
        }
        y
    }

    fn transpose(w: &[f32], k: usize, n: usize) -> Vec<f32> {
        (0..n * k).map(|i| w[(i % k) * n + i / k]).collect()
    }

    #[test]
    #[cfg_attr(not(target_arch = "x86_64"), ignore = "the kernels are for x86-64")]
    fn every_kernel_equals_the_ordered_sum_bit_for_bit() {
        let isas = Isa::available();
        assert!(
            !isas.is_empty(),
            "this CPU has neither AVX-512 nor AVX2 with FMA"
        );
        let shapes = [
            (1, 1, 1),
            (1, 64, 32),
            (5, 7, 31),
            (12, 33, 33),
            (13, 64, 100),
            (250, 70, 65),
            (300, 16, 8),
            (14, 2 * KC + 77, 40),
        ];
        for (m, k, n) in shapes {
            let x = values(m * k, 1);
            let w = values(k * n, 2);
            let b = values(n, 3);
            for &isa in &isas {
                for precision in [Precision::F32, Precision::Bf16, Precision::F16] {
                    // The weight as the precision keeps it: the sums are over these values.
                    let kept: Vec<f32> = w
                        .iter()
                        .map(|&v| precision.decode(precision.encode(v)))
                        .collect();
                    let by_rows = PackedWeight::from_rows(&w, k, n, isa, precision);
                    let by_columns =
                        PackedWeight::from_columns(&transpose(&w, k, n), k, n, isa, precision);
                    assert_eq!(by_rows.unpack(), kept, "unpacks to what was packed");
                    assert_eq!(by_columns.unpack(), kept, "unpacks to what was packed");
                    for packed in [&by_rows, &by_columns] {
                        for bias in [None, Some(&b[..])] {
                            let y = packed.product(&x, bias);
                            let want = reference(&x, &kept, bias, k, n);
                            let what = format!("{isa:?} {precision:?} {m}x{k}x{n}");
                            assert_eq!(y.len(), want.len(), "{what}: output size");
                            let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                            assert!(same, "{what}: differs from the ordered sum");
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[cfg_attr(not(target_arch = "x86_64"), ignore = "the kernels are for x86-64")]
    fn a_row_gives_the_same_bits_alone_and_among_many() {
        let isa = Isa::detect();
        let isa = isa.unwrap_or_else(|| panic!("this CPU has neither AVX-512 nor AVX2 with FMA"));
        let (m, k, n) = (500, KC + 96, 70);
        for precision in [Precision::F32, Precision::Bf16, Precision::F16] {
            let packed = PackedWeight::from_rows(&values(k * n, 4), k, n, isa, precision);
            let x = values(m * k, 5);
            let all = packed.product(&x, None);
            for r in [0, 11, 12, 239, 240, 499] {
                let alone = packed.product(&x[r * k..(r + 1) * k], None);
                assert_eq!(alone, all[r * n..(r + 1) * n], "{precision:?} row {r}");
            }
        }
    }

    /// Every half-precision bit pattern widens in the kernels as the scalar decoder widens it
    /// (a product with `x` = 1 is the weight itself), subnormals and infinities included; and
    /// packing rounds to nearest even, as torch's `.to(torch.bfloat16 / torch.float16)`.
    #[test]
    #[cfg_attr(not(target_arch = "x86_64"), ignore = "the kernels are for x86-64")]
    fn every_half_value_widens_exactly_and_packing_rounds_to_nearest_even() {
        for precision in [Precision::Bf16, Precision::F16] {
            let all: Vec<f32> = (0..=u16::MAX)
                .map(|h| precision.decode(u32::from(h)))
                .filter(|v| !v.is_nan())
                .collect();
            for bits in (0..=u16::MAX).map(u32::from) {
                let v = precision.decode(bits);
                if !v.is_nan() {
                    assert_eq!(
                        precision.encode(v),
                        bits,
                        "{precision:?} {bits:#06x} round trip"
                    );
                }
            }
            for &isa in &Isa::available() {
                let packed = PackedWeight::from_rows(&all, 1, all.len(), isa, precision);
                let y = packed.product(&[1.0], None);
                // 0 + 1 · w: w itself, but +0 for -0.
                let want = reference(&[1.0], &all, None, 1, all.len());
                let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{isa:?} {precision:?}: a value widened differently");
            }
        }
        // Halfway cases go to the even neighbour; 1 + 2^-8 is halfway between bf16 values.
        assert_eq!(Precision::Bf16.encode(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(Precision::Bf16.encode(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(Precision::F16.encode(1.0 + 1.0 / 2048.0), 0x3c00);
        assert_eq!(Precision::F16.encode(65520.0), 0x7c00);
        assert_eq!(Precision::F16.encode(2f32.powi(-25)), 0x0000);
        assert_eq!(Precision::F16.encode(3.0 * 2f32.powi(-26)), 0x0001);
    }
}
