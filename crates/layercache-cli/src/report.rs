//! Output of `layercache sim`: a table, JSON lines, or an SVG plot.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use plotters::prelude::*;
use serde::Serialize;

use crate::sim::SimPolicy;

/// One (policy, capacity) outcome; also the JSON line schema.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SimResult {
    /// The trace's file name (or the built-in workload's name).
    pub(crate) trace: String,
    pub(crate) policy: &'static str,
    /// Entries, or bytes when weighted.
    pub(crate) capacity: u64,
    pub(crate) requests: u64,
    pub(crate) hits: u64,
    /// Wall-clock seconds of this replay.
    pub(crate) seconds: f64,
}

impl SimResult {
    pub(crate) fn hit_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.hits as f64 / self.requests as f64
        }
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    trace: &'a str,
    policy: &'a str,
    capacity: u64,
    requests: u64,
    hits: u64,
    hit_ratio: f64,
    seconds: f64,
}

pub(crate) fn print_json(results: &[SimResult]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for r in results {
        let line = JsonLine {
            trace: &r.trace,
            policy: r.policy,
            capacity: r.capacity,
            requests: r.requests,
            hits: r.hits,
            hit_ratio: r.hit_ratio(),
            seconds: r.seconds,
        };
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    }
    Ok(())
}

fn capacity_label(c: u64, weighted: bool) -> String {
    if weighted && c >= 1 << 20 && c.is_multiple_of(1 << 20) {
        format!("{} MiB", c >> 20)
    } else {
        c.to_string()
    }
}

pub(crate) fn print_table(
    trace: &str,
    weighted: bool,
    policies: &[SimPolicy],
    capacities: &[u64],
    results: &[SimResult],
) {
    let requests = results.first().map_or(0, |r| r.requests);
    println!(
        "{trace}: {requests} requests; hit ratio % by policy and capacity ({})",
        if weighted { "bytes" } else { "entries" }
    );
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec![Cell::new("policy")];
    header.extend(
        capacities
            .iter()
            .map(|&c| Cell::new(capacity_label(c, weighted))),
    );
    table.set_header(header);
    for &p in policies {
        let mut row = vec![Cell::new(p.name())];
        for &c in capacities {
            let cell = results
                .iter()
                .find(|r| r.policy == p.name() && r.capacity == c)
                .map_or_else(
                    || "-".to_string(),
                    |r| format!("{:.2}", 100.0 * r.hit_ratio()),
                );
            row.push(Cell::new(cell).set_alignment(CellAlignment::Right));
        }
        table.add_row(row);
    }
    println!("{table}");
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(0, 0, 0),
    RGBColor(127, 127, 127),
];

pub(crate) fn plot(
    path: &Path,
    trace: &str,
    weighted: bool,
    policies: &[SimPolicy],
    results: &[SimResult],
) -> Result<()> {
    let min_c = results
        .iter()
        .map(|r| r.capacity)
        .min()
        .context("nothing to plot")?;
    let max_c = results
        .iter()
        .map(|r| r.capacity)
        .max()
        .context("nothing to plot")?;
    let (lo, hi) = (min_c as f64, (max_c as f64).max(min_c as f64 + 1.0));
    let top = results
        .iter()
        .map(|r| 100.0 * r.hit_ratio())
        .fold(0.0f64, f64::max);
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let unit = if weighted {
        "capacity (bytes)"
    } else {
        "capacity (entries)"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{trace}: hit ratio by capacity"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..(top * 1.1).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc(unit)
        .y_desc("hit ratio (%)")
        .draw()?;
    for (i, &p) in policies.iter().enumerate() {
        let color = if p == SimPolicy::Opt {
            BLACK
        } else {
            COLORS[i % COLORS.len()]
        };
        let mut points: Vec<(f64, f64)> = results
            .iter()
            .filter(|r| r.policy == p.name())
            .map(|r| (r.capacity as f64, 100.0 * r.hit_ratio()))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(p.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|pt| Circle::new(pt, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}
