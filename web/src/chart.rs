//! Server-rendered SVG charts: bars with interval whiskers and a baseline marker.

/// One bar: label, value and interval.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Interval, when known.
    pub ci: Option<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A bar chart (SVG markup, labels escaped) with whiskers for intervals and a dashed line at
/// the baseline, if any.
pub fn bars(title: &str, bars: &[Bar], baseline: Option<(f64, &str)>) -> String {
    let (w, h, pad, top) = (60.0f64, 160.0f64, 40.0f64, 24.0f64);
    let width = pad + w * bars.len().max(1) as f64 + 10.0;
    let mut hi = bars
        .iter()
        .map(|b| b.ci.map_or(b.value, |c| c.1.max(b.value)))
        .chain(baseline.map(|b| b.0))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let lo = bars
        .iter()
        .map(|b| b.ci.map_or(b.value, |c| c.0.min(b.value)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::min);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let y = |v: f64| top + h * (hi - v) / (hi - lo);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{width:.0}\" height=\"{:.0}\" role=\"img\" aria-label=\"{}\">\
         <text x=\"{pad}\" y=\"14\" font-size=\"12\">{}</text>\
         <line x1=\"{pad}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>",
        top + h + 40.0,
        esc(title),
        esc(title),
        y(0.0),
        width - 5.0,
        y(0.0)
    );
    svg += &format!(
        "<text x=\"{:.0}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        pad - 4.0,
        y(hi) + 4.0,
        crate::format::num(hi)
    );
    for (i, b) in bars.iter().enumerate() {
        let x = pad + w * i as f64 + 10.0;
        if b.value.is_finite() {
            let (y0, y1) = (y(b.value.max(0.0)), y(b.value.min(0.0)));
            svg += &format!(
                "<rect x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#5d8aa8\"><title>{}: {}</title></rect>",
                w - 20.0,
                (y1 - y0).max(0.5),
                esc(&b.label),
                crate::format::num(b.value)
            );
        }
        if let Some((l, u)) = b.ci {
            let cx = x + (w - 20.0) / 2.0;
            svg += &format!(
                "<line x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"#222\"/>",
                y(l),
                y(u)
            );
        }
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            x + (w - 20.0) / 2.0,
            top + h + 14.0,
            esc(&b.label.chars().take(12).collect::<String>())
        );
    }
    if let Some((v, source)) = baseline {
        svg += &format!(
            "<line x1=\"{pad}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\"><title>baseline {2} ({3})</title></line>",
            y(v),
            width - 5.0,
            crate::format::num(v),
            esc(source)
        );
    }
    svg + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_whiskers_drawn() {
        let s = bars(
            "bias <paper>",
            &[Bar {
                label: "<script>".into(),
                value: 0.5,
                ci: Some((0.4, 0.6)),
            }],
            Some((0.47, "paper")),
        );
        assert!(!s.contains("<script>") && s.contains("&lt;script&gt;"));
        assert_eq!(s.matches("<line").count(), 3, "axis, whisker, baseline");
    }
}
