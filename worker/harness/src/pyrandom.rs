//! Python's `random.Random` as far as lm-eval's few-shot sampler uses it: seeding from an
//! integer (`init_by_array` over its 32-bit words), `getrandbits`, `_randbelow` and `sample`.
//! The same seed draws the same few-shot examples as lm-eval.

/// CPython's Mersenne Twister (MT19937) with its integer seeding.
pub struct PyRandom {
    state: [u32; 624],
    index: usize,
}

const N: usize = 624;
const M: usize = 397;

impl PyRandom {
    /// `random.Random(seed)` for an integer seed (its absolute value, as CPython takes it).
    pub fn new(seed: i64) -> PyRandom {
        let mut n = seed.unsigned_abs();
        let mut key = Vec::new();
        while n > 0 {
            key.push((n & 0xffff_ffff) as u32);
            n >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        let mut r = PyRandom {
            state: [0; N],
            index: N,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.state[0] = s;
        for i in 1..N {
            let prev = self.state[i - 1];
            self.state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.state[0] = self.state[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.state[0] = self.state[N - 1];
                i = 1;
            }
        }
        self.state[0] = 0x8000_0000;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            for k in 0..N {
                let y = (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % N] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.state[k] = self.state[(k + M) % N] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for `k` ≤ 64: whole 32-bit words, the last one's high bits.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        low | (high << 32)
    }

    /// `_randbelow(n)`: rejection sampling over `n.bit_length()` bits.
    pub fn randbelow(&mut self, n: usize) -> usize {
        let n = n as u64;
        let k = 64 - n.leading_zeros();
        let mut r = self.getrandbits(k);
        while r >= n {
            r = self.getrandbits(k);
        }
        r as usize
    }

    /// `sample(population, k)`: the indices of `k` distinct items of a population of `n`, in
    /// the order Python's `sample` picks them (a pool for small populations, a set of picked
    /// indices for large ones). `None` where `k > n` (Python's `ValueError`).
    pub fn sample(&mut self, n: usize, k: usize) -> Option<Vec<usize>> {
        if k > n {
            return None;
        }
        let mut setsize = 21usize;
        if k > 5 {
            // 4 ** ceil(log(3k, 4)), as CPython computes it in floating point.
            let exp = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil() as u32;
            setsize += 4usize.pow(exp);
        }
        let mut out = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow(n - i);
                out.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::new();
            for _ in 0..k {
                let mut j = self.randbelow(n);
                while selected.contains(&j) {
                    j = self.randbelow(n);
                }
                selected.insert(j);
                out.push(j);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values printed by CPython 3.11: `r = random.Random(1234); [r.getrandbits(32) for _ in
    // range(3)]`, `random.Random(1234).sample(range(10), 4)`, `random.Random(42).sample(
    // range(1000), 5)` and `random.Random(2**40 + 7).getrandbits(32)`.
    #[test]
    fn draws_what_cpython_draws() {
        let mut r = PyRandom::new(1234);
        let words: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(words, [4_150_886_329, 3_342_196_574, 1_892_932_127]);
        assert_eq!(PyRandom::new(1234).sample(10, 4), Some(vec![7, 1, 0, 9]));
        assert_eq!(
            PyRandom::new(42).sample(1000, 5),
            Some(vec![654, 114, 25, 759, 281])
        );
        assert_eq!(PyRandom::new((1 << 40) + 7).getrandbits(32), 2_635_837_658);
        assert_eq!(PyRandom::new(1).sample(3, 4), None);
    }
}
