//! Server-rendered SVG charts: bars with interval whiskers and a baseline marker, and a sweep's
//! progress over time. Every chart has both axes with round ticks and a label each (classes
//! `axis`, `tick`, `axis-label`, which the browser check looks for); an axis whose values are
//! all equal (all zero, say) still spans a round range around them; labels are never broken
//! inside a word (a name too long for its bar is shortened, in full in its tooltip).

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

/// A tick's label with as many decimals as its step needs (at most 6).
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    let v = if v.abs() < step / 1e6 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// A round axis over `[lo, hi]`: (start, end, step). All-equal values get a range around
/// them (`[0, 1]` for zeros), so ticks and labels stay readable.
fn axis(lo: f64, hi: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()).max(1.0) {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        (
            (lo - pad)
                .min(0.0)
                .max(if lo >= 0.0 { 0.0 } else { f64::MIN }),
            hi + pad,
        )
    } else {
        (lo, hi)
    };
    let step = tick_step(hi - lo, 4.0);
    let (start, mut end) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    if end <= start {
        end = start + step;
    }
    (start, end, step)
}

/// `label` in lines of at most `width` characters, broken at spaces (and after `-` or `_`
/// inside a long word); a part still too long is shortened with `…`, never broken.
fn wrap(label: &str, width: usize) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for word in label.split_whitespace().filter(|w| *w != "·") {
        if word.chars().count() <= width {
            parts.push(word.to_string());
            continue;
        }
        // Break a long word after its hyphens or underscores.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if matches!(c, '-' | '_') {
                parts.push(std::mem::take(&mut piece));
            }
        }
        if !piece.is_empty() {
            parts.push(piece);
        }
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for part in parts {
        let part = if part.chars().count() > width {
            let kept: String = part.chars().take(width - 1).collect();
            format!("{kept}…")
        } else {
            part
        };
        let joins = line.ends_with('-') || line.ends_with('_');
        let sep = if line.is_empty() || joins { 0 } else { 1 };
        if !line.is_empty() && line.chars().count() + sep + part.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        } else if sep == 1 {
            line.push(' ');
        }
        line += &part;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The y axis of a chart: grid lines, ticks with labels, the axis line and its label.
fn y_axis(
    svg: &mut String,
    (start, end, step): (f64, f64, f64),
    y: &dyn Fn(f64) -> f64,
    x0: f64,
    x1: f64,
    label: &str,
) {
    let ticks = ((end - start) / step).round() as usize;
    for k in 0..=ticks {
        let v = start + step * k as f64;
        svg.push_str(&format!(
            "<line class=\"gridline\" x1=\"{x0}\" y1=\"{0:.1}\" x2=\"{x1:.1}\" y2=\"{0:.1}\"/>\
             <text class=\"tick\" x=\"{1:.0}\" y=\"{2:.1}\" text-anchor=\"end\">{3}</text>",
            y(v),
            x0 - 5.0,
            y(v) + 3.5,
            tick_label(v, step)
        ));
    }
    let (top, bottom) = (y(end), y(start));
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{x0}\" y1=\"{top:.1}\" x2=\"{x0}\" y2=\"{bottom:.1}\"/>\
         <text class=\"axis-label\" transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (top + bottom) / 2.0,
        esc(label)
    ));
}

/// A bar chart (SVG markup, labels escaped): a labelled y axis with round ticks from 0 (or
/// below, for negative values), bars with whiskers for 95 % intervals, labels under the bars
/// with the x axis named, and a dashed line at the baseline, named in a legend.
pub fn bars(title: &str, metric: &str, bars: &[Bar], baseline: Option<(f64, &str)>) -> String {
    const LABEL_CHARS: usize = 16;
    let (slot, plot_h, left, top) = (112.0f64, 160.0f64, 64.0f64, 40.0f64);
    let labels: Vec<Vec<String>> = bars.iter().map(|b| wrap(&b.label, LABEL_CHARS)).collect();
    let label_lines = labels.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let legend =
        baseline.map(|(v, source)| format!("- - baseline {} ({source})", crate::format::num(v)));
    let text_chars = title
        .chars()
        .count()
        .max(legend.as_ref().map_or(0, |l| l.chars().count()));
    let width = (left + slot * bars.len().max(1) as f64 + 12.0).max(left + 7.0 * text_chars as f64);
    let finite = |v: &f64| v.is_finite();
    let hi = bars
        .iter()
        .map(|b| b.ci.map_or(b.value, |c| c.1.max(b.value)))
        .chain(baseline.map(|b| b.0))
        .filter(finite)
        .fold(0.0f64, f64::max);
    let lo = bars
        .iter()
        .map(|b| b.ci.map_or(b.value, |c| c.0.min(b.value)))
        .filter(finite)
        .fold(0.0f64, f64::min);
    let range = axis(lo, hi);
    let (start, end, _) = range;
    let y = |v: f64| top + plot_h * (end - v) / (end - start);
    let labels_top = top + plot_h + 16.0;
    let height = labels_top + 13.0 * label_lines as f64 + 22.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{}\">\
         <text class=\"title\" x=\"{left}\" y=\"14\">{}</text>",
        esc(title),
        esc(title),
    );
    if let Some(l) = &legend {
        svg += &format!(
            "<text x=\"{left}\" y=\"29\" fill=\"#b42318\">{}</text>",
            esc(l)
        );
    }
    y_axis(&mut svg, range, &y, left, width - 6.0, metric);
    svg += &format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\"/>",
        y(start.max(0.0).min(end)),
        width - 6.0,
    );
    for (i, (b, lines)) in bars.iter().zip(&labels).enumerate() {
        let x = left + slot * i as f64 + 12.0;
        let cx = x + (slot - 24.0) / 2.0;
        if b.value.is_finite() {
            let (y0, y1) = (y(b.value.max(0.0)), y(b.value.min(0.0)));
            svg += &format!(
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
                slot - 24.0,
                (y1 - y0).max(0.5),
                esc(&b.label),
                crate::format::num(b.value)
            );
        }
        if let Some((l, u)) = b.ci {
            svg += &format!(
                "<line x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"#1c2230\"/>",
                y(l),
                y(u)
            );
        }
        svg += &format!(
            "<text class=\"tick\" x=\"{cx:.1}\" y=\"{labels_top:.1}\" text-anchor=\"middle\"><title>{}</title>",
            esc(&b.label)
        );
        for (k, line) in lines.iter().enumerate() {
            let dy = if k == 0 { 0.0 } else { 13.0 };
            svg += &format!("<tspan x=\"{cx:.1}\" dy=\"{dy}\">{}</tspan>", esc(line));
        }
        svg += "</text>";
    }
    svg += &format!(
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">run (model · setting · seed)</text>",
        left + (width - left) / 2.0,
        height - 6.0
    );
    if let Some((v, source)) = baseline {
        svg += &format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#b42318\" stroke-dasharray=\"4 3\"><title>baseline {2} ({3})</title></line>",
            y(v),
            width - 6.0,
            crate::format::num(v),
            esc(source)
        );
    }
    svg + "</svg>"
}

/// A sweep's progress over time: runs finished (done or failed) against the time since the
/// first start, as a step line, with the total as a dashed line; both axes ticked and named.
pub fn progress(
    start: chrono::DateTime<chrono::Utc>,
    finished: &[chrono::DateTime<chrono::Utc>],
    total: usize,
) -> String {
    let (plot_w, plot_h, left, top) = (420.0f64, 140.0f64, 64.0f64, 28.0f64);
    let mut times: Vec<_> = finished.to_vec();
    times.sort();
    let end = times.last().copied().unwrap_or(start).max(start);
    let seconds = ((end - start).num_milliseconds() as f64 / 1000.0).max(0.0);
    // Minutes when it ran longer than three of them.
    let (unit, scale) = if seconds > 180.0 {
        ("minutes", 60.0)
    } else {
        ("seconds", 1.0)
    };
    let x_range = axis(0.0, seconds / scale);
    let (_, x_end, x_step) = x_range;
    let x = |v: f64| left + plot_w * v / x_end;
    let y_range = axis(0.0, total as f64);
    let (_, y_end, _) = y_range;
    let y = |n: f64| top + plot_h * (1.0 - n / y_end);
    let width = left + plot_w + 16.0;
    let height = top + plot_h + 48.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"runs finished over time\">\
         <text class=\"title\" x=\"{left}\" y=\"14\">runs finished over time ({} of {total} in {})</text>",
        times.len(),
        crate::format::duration((end - start).num_seconds()),
    );
    y_axis(&mut svg, y_range, &y, left, left + plot_w, "runs finished");
    let ticks = (x_end / x_step).round() as usize;
    let bottom = top + plot_h;
    for k in 0..=ticks {
        let v = x_step * k as f64;
        svg += &format!(
            "<line class=\"axis\" x1=\"{0:.1}\" y1=\"{bottom:.1}\" x2=\"{0:.1}\" y2=\"{1:.1}\"/>\
             <text class=\"tick\" x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{3}</text>",
            x(v),
            bottom + 4.0,
            bottom + 16.0,
            tick_label(v, x_step)
        );
    }
    svg += &format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\"/>\
         <text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{unit} since the first run started</text>",
        left + plot_w,
        left + plot_w / 2.0,
        height - 6.0
    );
    let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
    for (i, t) in times.iter().enumerate() {
        let at = (*t - start).num_milliseconds() as f64 / 1000.0 / scale;
        points += &format!(
            " {:.1},{:.1} {:.1},{:.1}",
            x(at),
            y(i as f64),
            x(at),
            y(i as f64 + 1.0)
        );
    }
    svg += &format!(
        "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#687188\" stroke-dasharray=\"4 3\"><title>{total} runs in the sweep</title></line>\
         <polyline class=\"line\" points=\"{points}\"/></svg>",
        y(total as f64),
        left + plot_w,
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_whiskers_drawn() {
        let s = bars(
            "bias <paper>",
            "bias_paper",
            &[Bar {
                label: "<script>".into(),
                value: 0.5,
                ci: Some((0.4, 0.6)),
            }],
            Some((0.47, "paper")),
        );
        assert!(!s.contains("<script>") && s.contains("&lt;script&gt;"));
        assert_eq!(s.matches("stroke=\"#1c2230\"").count(), 1, "a whisker");
        assert!(s.contains("stroke-dasharray=\"4 3\"") && s.contains("baseline 0.4700 (paper)"));
        assert_eq!(
            s.matches("class=\"axis-label\"").count(),
            2,
            "both axes named"
        );
    }

    #[test]
    fn the_axis_has_round_ticks_from_zero_and_labels_are_whole() {
        let s = bars(
            "no-crows-pairs: bias_paper",
            "bias_paper",
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
            s.contains(">NorGPT-369M ten<") && s.contains(">seed 0<"),
            "{s}"
        );
        assert_eq!(tick_step(90.0, 4.0), 20.0);
        assert_eq!(tick_step(0.9, 4.0), 0.2);
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        // A long name breaks after its hyphens, never inside a word; a part still too long is
        // shortened.
        assert_eq!(
            wrap("a-very-long-model-name-indeed", 14),
            ["a-very-long-", "model-name-", "indeed"]
        );
        assert_eq!(
            wrap("Supercalifragilisticexpialidocious", 10),
            ["Supercali…"]
        );
    }

    #[test]
    fn all_equal_and_all_zero_values_get_a_readable_axis() {
        assert_eq!(axis(0.0, 0.0), (0.0, 1.0, 0.2));
        let (start, end, step) = axis(5.0, 5.0);
        assert!(
            start <= 5.0 && end > 5.0 && step > 0.0,
            "{start} {end} {step}"
        );
        let s = bars(
            "t",
            "m",
            &[
                Bar {
                    label: "a".into(),
                    value: 0.0,
                    ci: None,
                },
                Bar {
                    label: "b".into(),
                    value: 0.0,
                    ci: None,
                },
            ],
            None,
        );
        assert!(s.contains(">0.0<") && s.contains(">1.0<"), "{s}");
        assert!(!s.contains("00000"), "no runaway decimals: {s}");
    }

    #[test]
    fn progress_has_both_axes_ticked_and_named() {
        let start = chrono::Utc::now();
        let finished = [
            start + chrono::Duration::seconds(20),
            start + chrono::Duration::seconds(50),
        ];
        let s = progress(start, &finished, 4);
        assert_eq!(s.matches("class=\"axis-label\"").count(), 2, "{s}");
        assert!(s.contains("seconds since the first run started") && s.contains("runs finished"));
        assert!(s.matches("class=\"tick\"").count() >= 6, "{s}");
    }
}
