//! Linear-layer weights packed once, at load, into panels of 32 output columns, and the CPU
//! f32 product `x W + b` over them with AVX-512 or AVX2/FMA kernels chosen at run time.
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
    /// AVX2 with FMA.
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
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
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

/// One 64-byte-aligned cache line of 16 floats.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A `[K, N]` weight in panels: panel `p` holds columns `32p..32p+32` for every row `l` in
/// turn (zero beyond `N`).
pub struct PackedWeight {
    k: usize,
    n: usize,
    isa: Isa,
    lines: Vec<Line>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeight[{}x{}, {:?}]", self.k, self.n, self.isa)
    }
}

impl PackedWeight {
    /// Pack a `[K, N]` weight stored row by row (`[K, N]`, as GPT-2's Conv1D keeps it).
    pub fn from_rows(data: &[f32], k: usize, n: usize, isa: Isa) -> PackedWeight {
        PackedWeight::pack(data, k, n, isa, 1, n)
    }

    /// Pack a `[K, N]` weight stored column by column (`[N, K]`, as `nn.Linear` keeps it).
    pub fn from_columns(data: &[f32], k: usize, n: usize, isa: Isa) -> PackedWeight {
        PackedWeight::pack(data, k, n, isa, k, 1)
    }

    fn pack(
        data: &[f32],
        k: usize,
        n: usize,
        isa: Isa,
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
        let mut lines = vec![Line([0.0; 16]); panels * k * NR / 16];
        for p in 0..panels {
            for c in 0..NR.min(n - p * NR) {
                let col = p * NR + c;
                for l in 0..k {
                    let at = (p * k + l) * NR + c;
                    lines[at / 16].0[at % 16] = data[col * col_stride + l * row_stride];
                }
            }
        }
        PackedWeight { k, n, isa, lines }
    }

    /// The weight as packed: `[K, N]` row by row.
    pub fn unpack(&self) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        let mut out = vec![0f32; k * n];
        for (i, v) in out.iter_mut().enumerate() {
            let (l, col) = (i / n, i % n);
            let at = ((col / NR) * k + l) * NR + col % NR;
            *v = self.lines[at / 16].0[at % 16];
        }
        out
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

    fn panel(&self, p: usize) -> *const f32 {
        self.lines[p * self.k * NR / 16..].as_ptr().cast()
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
                        // `k · NR`, so the slice from `k0` holds `kc · MR` and `kc · NR`; the
                        // detected ISA was checked when packing.
                        unsafe {
                            kernel(
                                self.isa,
                                mr,
                                kc,
                                xs[(block * k + k0) * MR..].as_ptr(),
                                self.panel(p).add(k0 * NR),
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
/// `x` holds `k · MR` floats, `b` holds `k · NR`, and the CPU runs `isa`.
unsafe fn kernel(
    isa: Isa,
    mr: usize,
    k: usize,
    x: *const f32,
    b: *const f32,
    tile: &mut [[f32; NR]; MR],
    resume: bool,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract; the AVX2 halves stay within the block's `MR` rows and the
    // panel's `NR` columns.
    unsafe {
        match isa {
            Isa::Avx512 => x86::avx512_block(mr, k, x, b, tile, resume),
            Isa::Avx2 => {
                // Four calls of at most 6 rows × 16 columns (16 vector registers).
                for (row, rows) in [(0, mr.min(6)), (6, mr.saturating_sub(6))] {
                    for half in [0, 16] {
                        let tile = &mut tile[row..];
                        x86::avx2_block(rows, k, x.add(row), b.add(half), tile, half, resume);
                    }
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, mr, k, x, b, tile, resume);
        unreachable!("no packed kernels on this architecture");
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// `mr` (≤ 12) rows against a whole panel.
    ///
    /// # Safety
    /// As [`super::kernel`], with AVX-512F present.
    pub unsafe fn avx512_block(
        mr: usize,
        k: usize,
        x: *const f32,
        b: *const f32,
        tile: &mut [[f32; NR]; MR],
        resume: bool,
    ) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match mr {
                1 => avx512::<1>(k, x, b, tile, resume),
                2 => avx512::<2>(k, x, b, tile, resume),
                3 => avx512::<3>(k, x, b, tile, resume),
                4 => avx512::<4>(k, x, b, tile, resume),
                5 => avx512::<5>(k, x, b, tile, resume),
                6 => avx512::<6>(k, x, b, tile, resume),
                7 => avx512::<7>(k, x, b, tile, resume),
                8 => avx512::<8>(k, x, b, tile, resume),
                9 => avx512::<9>(k, x, b, tile, resume),
                10 => avx512::<10>(k, x, b, tile, resume),
                11 => avx512::<11>(k, x, b, tile, resume),
                _ => avx512::<12>(k, x, b, tile, resume),
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512<const R: usize>(
        k: usize,
        x: *const f32,
        b: *const f32,
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
            // SAFETY: `b` holds `k · NR` floats, 64-byte aligned per row; `x` holds `k · MR`.
            unsafe {
                let b0 = _mm512_load_ps(b.add(l * NR));
                let b1 = _mm512_load_ps(b.add(l * NR + 16));
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
    /// columns `col..col + 16` of `tile`.
    ///
    /// # Safety
    /// As [`super::kernel`], with AVX2 and FMA present; `col` is 0 or 16.
    pub unsafe fn avx2_block(
        rows: usize,
        k: usize,
        x: *const f32,
        b: *const f32,
        tile: &mut [[f32; NR]],
        col: usize,
        resume: bool,
    ) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match rows {
                0 => {}
                1 => avx2::<1>(k, x, b, tile, col, resume),
                2 => avx2::<2>(k, x, b, tile, col, resume),
                3 => avx2::<3>(k, x, b, tile, col, resume),
                4 => avx2::<4>(k, x, b, tile, col, resume),
                5 => avx2::<5>(k, x, b, tile, col, resume),
                _ => avx2::<6>(k, x, b, tile, col, resume),
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<const R: usize>(
        k: usize,
        x: *const f32,
        b: *const f32,
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
                let b0 = _mm256_load_ps(b.add(l * NR));
                let b1 = _mm256_load_ps(b.add(l * NR + 8));
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
                let by_rows = PackedWeight::from_rows(&w, k, n, isa);
                let by_columns = PackedWeight::from_columns(&transpose(&w, k, n), k, n, isa);
                assert_eq!(by_rows.unpack(), w, "unpacks to what was packed");
                assert_eq!(by_columns.unpack(), w, "unpacks to what was packed");
                for packed in [&by_rows, &by_columns] {
                    for bias in [None, Some(&b[..])] {
                        let y = packed.product(&x, bias);
                        let want = reference(&x, &w, bias, k, n);
                        assert_eq!(y.len(), want.len(), "{isa:?} {m}x{k}x{n}: output size");
                        let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{isa:?} {m}x{k}x{n}: differs from the ordered sum");
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
        let packed = PackedWeight::from_rows(&values(k * n, 4), k, n, isa);
        let x = values(m * k, 5);
        let all = packed.product(&x, None);
        for r in [0, 11, 12, 239, 240, 499] {
            let alone = packed.product(&x[r * k..(r + 1) * k], None);
            assert_eq!(alone, all[r * n..(r + 1) * n], "row {r}");
        }
    }
}
