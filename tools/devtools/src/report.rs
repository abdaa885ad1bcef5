//! What every benchmark report shares: the machine it ran on and its section of BENCHMARKS.md.

use std::path::Path;

/// The CPU model from /proc/cpuinfo (figures hold only for the machine they were measured on).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The median of `xs` (NaN when empty).
pub fn median(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Replace the `## {title}` section of the Markdown file at `path` with `section` (which
/// starts with that heading), or append it.
pub fn replace_section(path: &Path, title: &str, section: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let heading = format!("## {title}");
    let text = match text.find(&heading) {
        Some(start) => {
            let end = text[start + 1..]
                .find("\n## ")
                .map_or(text.len(), |e| start + 2 + e);
            format!("{}{section}{}", &text[..start], &text[end..])
        }
        None => format!("{}\n\n{section}", text.trim_end()),
    };
    std::fs::write(path, text)?;
    Ok(())
}
