//! Development tools of nlebench, kept out of the product crates: the synthetic history the
//! dashboard benchmark and the query-count tests seed. The benchmarks themselves are the
//! `nlebench-dev` binary (see BENCHMARKS.md).

pub mod seed;
