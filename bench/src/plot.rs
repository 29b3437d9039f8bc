//! The plot written next to the markdown page, four panels: Mpps and cycles/packet
//! against the number of established flows (log x), one line per scenario and frame
//! size; the in-loop latency percentiles of the 64-byte scenarios against flows; and
//! Mpps against worker cores, one line per flow count.
//! SVG only (`plotters` without its bitmap and font backends).

use crate::figure::{Figure, Scaling};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Picks the plotted value out of (flows, Mpps, cycles/packet).
type Pick = fn(&(f64, f64, f64)) -> f64;

/// One line: a scenario at one frame size.
struct Series {
    name: String,
    /// (flows, Mpps, cycles/packet), ascending flows.
    points: Vec<(f64, f64, f64)>,
}

fn series(figures: &[&Figure], hz: u64) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for f in figures {
        let name = format!("{}, {}", f.scenario, f.size.label());
        let p = (f.flows as f64, f.mpps(hz), f.cycles_per_packet());
        match out.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(p),
            None => out.push(Series {
                name,
                points: vec![p],
            }),
        }
    }
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The SVG text of the plot; `None` if there is nothing to draw. `ring I/O only` is
/// left out: at hundreds of Mpps it would flatten every other line.
pub fn svg(
    figures: &[&Figure],
    scaling: &[&Scaling],
    hz: u64,
    title: &str,
) -> Result<Option<String>, String> {
    let figures: Vec<&Figure> = figures
        .iter()
        .copied()
        .filter(|f| !f.scenario.starts_with("ring I/O"))
        .collect();
    let all = series(&figures, hz);
    if all.is_empty() {
        return Ok(None);
    }
    let (x_lo, x_hi) = all
        .iter()
        .flat_map(|s| &s.points)
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
    let (x_lo, x_hi) = (x_lo / 2.0, x_hi * 2.0);
    let top = |pick: Pick| {
        all.iter()
            .flat_map(|s| &s.points)
            .map(pick)
            .fold(0.0, f64::max)
            * 1.5
    };
    let (mpps_hi, cyc_hi) = (top(|p| p.1), top(|p| p.2));
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (1400, 1240)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(e)?;
        let (top_half, bottom) = root.split_vertically(610);
        let (left, right) = top_half.split_horizontally(700);
        let (lat_area, scale_area) = bottom.split_horizontally(700);
        latency_panel(&lat_area, &figures, hz, (x_lo, x_hi))?;
        scaling_panel(&scale_area, scaling, hz)?;
        let panels: [(_, &str, f64, Pick); 2] = [
            (left, "Mpps (median epoch, on-CPU)", mpps_hi, |p| p.1),
            (right, "cycles/packet (median epoch, on-CPU)", cyc_hi, |p| {
                p.2
            }),
        ];
        for (area, label, hi, pick) in panels {
            let mut chart = ChartBuilder::on(&area)
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .caption(label, ("sans-serif", 16))
                .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..hi.max(1.0))
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("established flows (log)")
                .y_desc(label)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(e)?;
            for (i, s) in all.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0, pick(p))).collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(e)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(e)?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .label_font(("sans-serif", 11))
                .draw()
                .map_err(e)?;
        }
        root.present().map_err(e)?;
    }
    Ok(Some(text))
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Draws `lines` (name, points) with markers and a legend.
fn draw_lines<'a, DB: DrawingBackend + 'a, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'a, DB, CT>,
    lines: Vec<(String, Vec<(f64, f64)>)>,
) -> Result<(), String> {
    for (i, (name, pts)) in lines.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(err)
}

/// p50, p99 and p99.9 in µs against flows, for the 64-byte scenarios that recorded them.
fn latency_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    figures: &[&Figure],
    hz: u64,
    (x_lo, x_hi): (f64, f64),
) -> Result<(), String> {
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (q, label) in [(0, "p50"), (1, "p99"), (2, "p99.9")] {
        for f in figures
            .iter()
            .filter(|f| f.size == crate::frames::Size::Bytes(64))
        {
            let Some(l) = f.latency_ns(hz) else { continue };
            let name = format!("{}, {label}", f.scenario);
            let p = (f.flows as f64, l[q] / 1e3);
            match lines.iter_mut().find(|(n, _)| *n == name) {
                Some((_, pts)) => pts.push(p),
                None => lines.push((name, vec![p])),
            }
        }
    }
    for (_, pts) in &mut lines {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let hi = lines
        .iter()
        .flat_map(|(_, p)| p)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.5;
    let label = "time in the worker loop, µs (64 B; poll duration per packet)";
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .caption(label, ("sans-serif", 16))
        .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("established flows (log)")
        .y_desc("µs")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(err)?;
    draw_lines(&mut chart, lines)
}

/// Mpps together against workers, one line per flow count.
fn scaling_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    scaling: &[&Scaling],
    hz: u64,
) -> Result<(), String> {
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for s in scaling {
        let name = format!("route + firewall, 64 B, {} flows", s.flows);
        let p = (s.workers() as f64, s.mpps(hz));
        match lines.iter_mut().find(|(n, _)| *n == name) {
            Some((_, pts)) => pts.push(p),
            None => lines.push((name, vec![p])),
        }
    }
    for (_, pts) in &mut lines {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let most_workers = scaling.iter().map(|s| s.workers()).max().unwrap_or(1);
    let most = most_workers as f64;
    let hi = lines
        .iter()
        .flat_map(|(_, p)| p)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.2;
    let label = "Mpps together (on-CPU) against worker cores";
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .caption(label, ("sans-serif", 16))
        .build_cartesian_2d(0.5..most + 0.5, 0.0..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("worker cores")
        .y_desc("Mpps")
        .x_labels(most_workers + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(err)?;
    draw_lines(&mut chart, lines)
}
