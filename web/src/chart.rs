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
    let (w, h, pad, top) = (90.0f64, 160.0f64, 40.0f64, 24.0f64);
    // Wide enough for the bars and the title (about 7 px per character at 12 px).
    let width =
        (pad + w * bars.len().max(1) as f64 + 10.0).max(pad + 7.0 * title.chars().count() as f64);
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
            esc(&b.label.chars().take(16).collect::<String>())
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

/// A sweep's progress over time: runs finished (done or failed) against time, as a step
/// line from the first start to the last finish, with the total as a dashed line.
pub fn progress(
    start: chrono::DateTime<chrono::Utc>,
    finished: &[chrono::DateTime<chrono::Utc>],
    total: usize,
) -> String {
    let (w, h, pad, top) = (420.0f64, 120.0f64, 40.0f64, 20.0f64);
    let mut times: Vec<_> = finished.to_vec();
    times.sort();
    let end = times.last().copied().unwrap_or(start).max(start);
    let span = ((end - start).num_milliseconds() as f64).max(1.0);
    let x =
        |t: chrono::DateTime<chrono::Utc>| pad + w * ((t - start).num_milliseconds() as f64 / span);
    let y = |n: usize| top + h * (1.0 - n as f64 / total.max(1) as f64);
    let mut points = format!("{:.1},{:.1}", pad, y(0));
    for (i, t) in times.iter().enumerate() {
        points += &format!(" {:.1},{:.1} {:.1},{:.1}", x(*t), y(i), x(*t), y(i + 1));
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{:.0}\" height=\"{:.0}\" role=\"img\" aria-label=\"progress over time\">\
         <text x=\"{pad}\" y=\"14\" font-size=\"12\">runs finished over time ({} of {total}, {})</text>\
         <line x1=\"{pad}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\
         <polyline fill=\"none\" stroke=\"#1f618d\" stroke-width=\"2\" points=\"{points}\"/></svg>",
        pad + w + 10.0,
        top + h + 20.0,
        times.len(),
        crate::format::duration((end - start).num_seconds()),
        y(total),
        pad + w,
        y(total),
    )
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
