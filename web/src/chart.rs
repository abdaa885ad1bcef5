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

/// A round step (1, 2 or 5 × a power of ten) giving at least `target` ticks over `span`.
fn tick_step(span: f64, target: f64) -> f64 {
    let raw = (span / target).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s <= raw * (1.0 + 1e-9))
        .unwrap_or(mag)
}

/// A tick's label with as many decimals as its step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// `label` in lines of at most `width` characters, broken at spaces and ` · ` where it can.
fn wrap(label: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in label.split_whitespace().filter(|w| *w != "·") {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += &word;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A bar chart (SVG markup, labels escaped): a y axis with round ticks from 0 (or below, for
/// negative values), bars with whiskers for intervals, full labels wrapped under the bars, and
/// a dashed line at the baseline, named in a legend.
pub fn bars(title: &str, bars: &[Bar], baseline: Option<(f64, &str)>) -> String {
    const LABEL_CHARS: usize = 14;
    let (w, h, pad, top) = (100.0f64, 160.0f64, 48.0f64, 34.0f64);
    let labels: Vec<Vec<String>> = bars.iter().map(|b| wrap(&b.label, LABEL_CHARS)).collect();
    let label_lines = labels.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let legend =
        baseline.map(|(v, source)| format!("- - baseline {} ({source})", crate::format::num(v)));
    // Wide enough for the bars, the title and the legend (about 7 px per character at 12 px).
    let text_chars = title
        .chars()
        .count()
        .max(legend.as_ref().map_or(0, |l| l.chars().count()));
    let width = (pad + w * bars.len().max(1) as f64 + 10.0).max(pad + 7.0 * text_chars as f64);
    let hi = bars
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
    let step = tick_step((hi - lo).max(1e-9), 4.0);
    let (lo, mut hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    if hi <= lo {
        hi = lo + step;
    }
    let y = |v: f64| top + h * (hi - v) / (hi - lo);
    let height = top + h + 8.0 + 12.0 * label_lines as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{}\">\
         <text x=\"{pad}\" y=\"13\" font-size=\"12\">{}</text>",
        esc(title),
        esc(title),
    );
    if let Some(l) = &legend {
        svg += &format!(
            "<text x=\"{pad}\" y=\"27\" font-size=\"10\" fill=\"#c0392b\">{}</text>",
            esc(l)
        );
    }
    // Ticks with light grid lines, the axis, and the zero line.
    let ticks = ((hi - lo) / step).round() as usize;
    for k in 0..=ticks {
        let v = lo + step * k as f64;
        svg += &format!(
            "<line x1=\"{pad}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#eee\"/>\
             <text x=\"{2:.0}\" y=\"{3:.1}\" font-size=\"10\" text-anchor=\"end\">{4}</text>",
            y(v),
            width - 5.0,
            pad - 4.0,
            y(v) + 3.5,
            tick_label(v, step)
        );
    }
    svg += &format!(
        "<line x1=\"{pad}\" y1=\"{top:.1}\" x2=\"{pad}\" y2=\"{:.1}\" stroke=\"#999\"/>\
         <line x1=\"{pad}\" y1=\"{1:.1}\" x2=\"{2:.1}\" y2=\"{1:.1}\" stroke=\"#999\"/>",
        top + h,
        y(0.0),
        width - 5.0,
    );
    for (i, (b, lines)) in bars.iter().zip(&labels).enumerate() {
        let x = pad + w * i as f64 + 10.0;
        let cx = x + (w - 20.0) / 2.0;
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
            svg += &format!(
                "<line x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"#222\"/>",
                y(l),
                y(u)
            );
        }
        svg += &format!(
            "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">",
            top + h + 14.0
        );
        for (k, line) in lines.iter().enumerate() {
            let dy = if k == 0 { 0.0 } else { 12.0 };
            svg += &format!("<tspan x=\"{cx:.1}\" dy=\"{dy}\">{}</tspan>", esc(line));
        }
        svg += "</text>";
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
        assert_eq!(s.matches("stroke=\"#222\"").count(), 1, "a whisker");
        assert!(s.contains("stroke-dasharray=\"4 3\"") && s.contains("baseline 0.4700 (paper)"));
    }

    #[test]
    fn the_axis_has_round_ticks_from_zero_and_labels_are_whole() {
        let s = bars(
            "no-crows-pairs: bias_paper",
            &[
                Bar {
                    label: "NorGPT-369M · ten · seed 0".into(),
                    value: 60.0,
                    ci: Some((30.0, 90.0)),
                },
                Bar {
                    label: "tiny-b · ten · seed 0".into(),
                    value: 50.0,
                    ci: None,
                },
            ],
            None,
        );
        for tick in [">0<", ">20<", ">40<", ">60<", ">80<", ">100<"] {
            assert!(s.contains(tick), "{tick}: {s}");
        }
        assert!(
            s.contains(">NorGPT-369M<") && s.contains(">ten seed 0<"),
            "{s}"
        );
        assert_eq!(tick_step(90.0, 4.0), 20.0);
        assert_eq!(tick_step(0.9, 4.0), 0.2);
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(
            wrap("a-very-long-model-name-indeed", 14),
            ["a-very-long-mo", "del-name-indee", "d"]
        );
    }
}
