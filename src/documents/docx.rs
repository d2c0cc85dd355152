//! The report as a Word document (`docx-rs`): Word's built-in heading styles
//! (`heading 1`–`3`, so outlines and tables of contents work in Word and
//! LibreOffice), list items, and the costs as a real table.

use std::io::Cursor;

use docx_rs::{AlignmentType, Docx, Paragraph, Run, Style, StyleType, Table, TableCell, TableRow};

use super::error::RenderError;
use super::model::{blocks, usd, Block, Report, Sources};

fn heading(level: u8, text: &str) -> Paragraph {
    Paragraph::new()
        .add_run(Run::new().add_text(text))
        .style(&format!("Heading{level}"))
        .keep_next(true)
}

// Every paragraph names its style: docx-rs writes `Normal` without marking it
// the default, and readers then see unstyled paragraphs as having none.
fn para(text: &str) -> Paragraph {
    Paragraph::new()
        .add_run(Run::new().add_text(text))
        .style("Normal")
}

fn note(text: &str) -> Paragraph {
    Paragraph::new()
        .add_run(Run::new().add_text(text).italic().color("666666"))
        .style("Normal")
}

fn styles(doc: Docx) -> Docx {
    // Word recognises its built-in styles by these lower-case names.
    [(1, 36), (2, 28), (3, 24)]
        .into_iter()
        .fold(doc, |doc, (level, half_points)| {
            doc.add_style(
                Style::new(format!("Heading{level}"), StyleType::Paragraph)
                    .name(format!("heading {level}"))
                    .based_on("Normal")
                    .next("Normal")
                    .q_format(true)
                    .outline_lvl(level - 1)
                    .size(half_points)
                    .bold(),
            )
        })
}

/// Markdown of an agent or a synthesis, block by block.
fn markdown(mut doc: Docx, md: &str) -> Docx {
    for b in blocks(md) {
        doc = match b {
            Block::Heading(_, t) => doc.add_paragraph(heading(3, &t)),
            Block::Paragraph(t) => doc.add_paragraph(para(&t)),
            Block::Item(depth, marker, t) => {
                doc.add_paragraph(para(&format!("{marker} {t}")).indent(
                    Some(360 * (depth as i32 + 1)),
                    None,
                    None,
                    None,
                ))
            }
            Block::Code(t) | Block::Quote(t) => doc.add_paragraph(note(&t)),
        };
    }
    doc
}

fn cell(text: &str, bold: bool, right: bool) -> TableCell {
    let run = if bold {
        Run::new().add_text(text).bold()
    } else {
        Run::new().add_text(text)
    };
    let mut p = Paragraph::new().add_run(run).style("Normal");
    if right {
        p = p.align(AlignmentType::Right);
    }
    TableCell::new().add_paragraph(p)
}

pub fn render(r: &Report) -> Result<Vec<u8>, RenderError> {
    let mut doc = styles(Docx::new());
    doc = doc
        .add_paragraph(heading(1, &r.title))
        .add_paragraph(note(&format!("Generated {}", r.date)));
    if r.simulated {
        doc = doc.add_paragraph(note(
            "Simulated run: produced by the offline simulated provider, not by a real model.",
        ));
    }
    doc = doc
        .add_paragraph(heading(2, "Task"))
        .add_paragraph(para(&r.task));
    if let Some(s) = &r.summary {
        doc = markdown(doc.add_paragraph(heading(2, "Summary")), s);
    }
    if !r.groups.is_empty() {
        doc = doc.add_paragraph(heading(2, "Group syntheses"));
        for g in &r.groups {
            doc = markdown(doc.add_paragraph(heading(3, &g.heading)), &g.body);
        }
    }
    doc = doc.add_paragraph(heading(2, "Agent findings"));
    for a in &r.agents {
        let about = a.about();
        doc = doc
            .add_paragraph(heading(3, &a.heading))
            .add_paragraph(note(&about));
        doc = match &a.body {
            Some(b) => markdown(doc, b),
            None => doc.add_paragraph(para(&format!(
                "Failed: {}",
                a.error.as_deref().unwrap_or("no answer")
            ))),
        };
    }
    doc = doc.add_paragraph(heading(2, "Costs"));
    let header = [
        "Step",
        "Model",
        "Input tokens",
        "Output tokens",
        "Cost (USD)",
    ];
    let mut rows = vec![TableRow::new(
        header
            .iter()
            .enumerate()
            .map(|(i, h)| cell(h, true, i >= 2))
            .collect(),
    )];
    let n = r.costs.len();
    for (i, c) in r.costs.iter().chain(std::iter::once(&r.total)).enumerate() {
        let bold = i == n;
        rows.push(TableRow::new(vec![
            cell(&c.step, bold, false),
            cell(&c.model, bold, false),
            cell(&c.tokens.input.to_string(), bold, true),
            cell(&c.tokens.output.to_string(), bold, true),
            cell(&usd(c.cost), bold, true),
        ]));
    }
    doc = doc
        .add_table(Table::new(rows).set_grid(vec![2400, 2400, 1500, 1500, 1500]))
        .add_paragraph(heading(2, "Sources"));
    match &r.sources {
        Sources::Cited(list) => {
            for s in list {
                doc = doc.add_paragraph(para(&format!(
                    "[{}] {} — {} (found by {} with {})",
                    s.n, s.title, s.url, s.agent, s.tool
                )));
            }
        }
        Sources::Agents(list) => {
            doc = doc.add_paragraph(para(
                "No tool sources were used; the findings rest on these agents and models:",
            ));
            for (agent, model) in list {
                doc = doc.add_paragraph(para(&format!("• {agent}: {model}")));
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    doc.build()
        .pack(&mut out)
        .map_err(|e| RenderError::Docx(e.to_string()))?;
    Ok(out.into_inner())
}
