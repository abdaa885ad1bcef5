//! Paper-faithful metrics. Each metric carries an implementation version, stored with its value.

pub mod bias;
pub mod bleu;
pub mod generation;
pub mod rouge;
