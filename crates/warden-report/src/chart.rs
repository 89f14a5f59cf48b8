//! The geometry of the inline SVG charts, computed here so the template only places numbers.
//! Every coordinate is a number formatted by Rust; every label is text the template escapes.

/// One bar.
pub(crate) struct Bar {
    /// Left edge.
    pub x: String,
    /// Top edge.
    pub y: String,
    /// Width.
    pub w: String,
    /// Height.
    pub h: String,
    /// CSS class (its colour).
    pub class: &'static str,
    /// The tooltip (`<title>`).
    pub tip: String,
}

/// A text label at a point.
pub(crate) struct Label {
    /// x.
    pub x: String,
    /// y.
    pub y: String,
    /// The text.
    pub text: String,
    /// SVG `text-anchor`: `start`, `middle` or `end`.
    pub anchor: &'static str,
}

/// A bar chart: `width` × `height` view box, bars and labels.
pub(crate) struct Chart {
    /// View box width.
    pub width: u32,
    /// View box height.
    pub height: u32,
    /// The bars.
    pub bars: Vec<Bar>,
    /// Labels (axis ticks, values, categories).
    pub labels: Vec<Label>,
    /// The y of the baseline.
    pub baseline: String,
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// Horizontal bars, one per category: `(label, value, class)`.
pub(crate) fn horizontal(items: &[(String, u64, &'static str)]) -> Chart {
    const WIDTH: f64 = 640.0;
    const LEFT: f64 = 110.0;
    const ROW: f64 = 30.0;
    const BAR: f64 = 20.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1) as f64;
    let span = WIDTH - LEFT - 70.0;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, (label, value, class)) in items.iter().enumerate() {
        let y = 10.0 + ROW * i as f64;
        let w = if *value == 0 {
            0.0
        } else {
            (span * *value as f64 / max).max(2.0)
        };
        bars.push(Bar {
            x: n(LEFT),
            y: n(y),
            w: n(w),
            h: n(BAR),
            class,
            tip: format!("{label}: {value}"),
        });
        labels.push(Label {
            x: n(LEFT - 8.0),
            y: n(y + 15.0),
            text: label.clone(),
            anchor: "end",
        });
        labels.push(Label {
            x: n(LEFT + w + 6.0),
            y: n(y + 15.0),
            text: value.to_string(),
            anchor: "start",
        });
    }
    let height = (20.0 + ROW * items.len() as f64) as u32;
    Chart {
        width: WIDTH as u32,
        height,
        bars,
        labels,
        baseline: n(f64::from(height) - 5.0),
    }
}

/// Vertical bars over time: `(day label, value)`, oldest first; the first, middle and last day
/// are labelled under the axis and the maximum beside it.
pub(crate) fn columns(items: &[(String, u64)]) -> Chart {
    const WIDTH: f64 = 760.0;
    const HEIGHT: f64 = 220.0;
    const LEFT: f64 = 60.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 30.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - 10.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0);
    let scale = max.max(1) as f64;
    let step = plot_w / items.len().max(1) as f64;
    let gap = if step > 4.0 { 1.0 } else { 0.0 };
    let base = TOP + plot_h;
    let mut bars = Vec::with_capacity(items.len());
    for (i, (label, value)) in items.iter().enumerate() {
        let h = plot_h * *value as f64 / scale;
        let h = if *value > 0 { h.max(1.0) } else { 0.0 };
        bars.push(Bar {
            x: n(LEFT + step * i as f64),
            y: n(base - h),
            w: n((step - gap).max(0.5)),
            h: n(h),
            class: "bar-activity",
            tip: format!("{label}: {value}"),
        });
    }
    let mut labels = vec![
        Label {
            x: n(LEFT - 6.0),
            y: n(TOP + 10.0),
            text: max.to_string(),
            anchor: "end",
        },
        Label {
            x: n(LEFT - 6.0),
            y: n(base),
            text: "0".into(),
            anchor: "end",
        },
    ];
    let mut ticks = vec![0, items.len() / 2, items.len().saturating_sub(1)];
    ticks.dedup();
    for i in ticks {
        if let Some((label, _)) = items.get(i) {
            labels.push(Label {
                x: n(LEFT + step * i as f64 + step / 2.0),
                y: n(HEIGHT - 8.0),
                text: label.clone(),
                anchor: "middle",
            });
        }
    }
    Chart {
        width: WIDTH as u32,
        height: HEIGHT as u32,
        bars,
        labels,
        baseline: n(base),
    }
}
