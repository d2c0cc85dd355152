//! The report as PDF, drawn with `krilla` (subset, embedded fonts with ToUnicode
//! maps, so the text is real text: searchable, selectable, extractable). Layout
//! (wrapping, pages, tables) is ours, in `layout.rs`; krilla draws the runs.
//! The fonts ship in `assets/fonts/` (see its README for what they cover):
//! DejaVu Sans for Latin, Greek and Cyrillic, Noto Sans CJK for the rest, chosen
//! per character.

mod layout;

use krilla::color::luma;
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::Document as Pdf;

use layout::{FontId, Layout, Metrics, TextStyle, A4, MARGIN};

use super::error::RenderError;
use super::model::{blocks, usd, Block, Report, Sources};

static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-subset.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold-subset.ttf");
static CJK: &[u8] = include_bytes!("../../../assets/fonts/NotoSansCJKsc-Regular-subset.otf");

struct Faces {
    regular: ttf_parser::Face<'static>,
    bold: ttf_parser::Face<'static>,
    cjk: ttf_parser::Face<'static>,
}

impl Faces {
    fn load() -> Result<Faces, RenderError> {
        let parse = |name: &'static str, data: &'static [u8]| {
            ttf_parser::Face::parse(data, 0).map_err(|e| RenderError::Font {
                name,
                reason: e.to_string(),
            })
        };
        Ok(Faces {
            regular: parse("DejaVuSans", REGULAR)?,
            bold: parse("DejaVuSans-Bold", BOLD)?,
            cjk: parse("NotoSansCJK", CJK)?,
        })
    }

    fn face(&self, f: FontId) -> &ttf_parser::Face<'static> {
        match f {
            FontId::Regular => &self.regular,
            FontId::Bold => &self.bold,
            FontId::Cjk => &self.cjk,
        }
    }
}

impl Metrics for Faces {
    fn font_for(&self, c: char, bold: bool) -> FontId {
        let latin = if bold { FontId::Bold } else { FontId::Regular };
        if self.face(latin).glyph_index(c).is_some() || c.is_whitespace() {
            latin
        } else if self.cjk.glyph_index(c).is_some() {
            FontId::Cjk
        } else {
            latin
        }
    }

    fn advance(&self, font: FontId, c: char, size: f32) -> f32 {
        let face = self.face(font);
        let gid = face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
        let adv = face.glyph_hor_advance(gid).unwrap_or(0) as f32;
        adv * size / face.units_per_em() as f32
    }
}

const BODY: TextStyle = TextStyle {
    size: 10.5,
    bold: false,
    gray: false,
    leading: 1.45,
};
const META: TextStyle = TextStyle {
    size: 9.0,
    bold: false,
    gray: true,
    leading: 1.4,
};

pub fn render(r: &Report) -> Result<Vec<u8>, RenderError> {
    let faces = Faces::load()?;
    let mut l = Layout::new(&faces);
    l.heading(&r.title, 20.0);
    l.text(&format!("Generated {}", r.date), META, 0.0);
    if r.simulated {
        l.text(
            "Simulated run: produced by the offline simulated provider, not by a real model.",
            META,
            0.0,
        );
    }
    l.rule();
    l.heading("Task", 15.0);
    l.text(&r.task, BODY, 0.0);
    if let Some(s) = &r.summary {
        l.heading("Summary", 15.0);
        markdown(&mut l, s);
    }
    if !r.groups.is_empty() {
        l.heading("Group syntheses", 15.0);
        for g in &r.groups {
            l.heading(&g.heading, 12.0);
            markdown(&mut l, &g.body);
        }
    }
    l.heading("Agent findings", 15.0);
    for a in &r.agents {
        l.heading(&a.heading, 12.0);
        let about = a.about();
        l.text(&about, META, 0.0);
        l.space(3.0);
        match &a.body {
            Some(b) => markdown(&mut l, b),
            None => l.text(
                &format!("Failed: {}", a.error.as_deref().unwrap_or("no answer")),
                BODY,
                0.0,
            ),
        }
    }
    l.heading("Costs", 15.0);
    let rows: Vec<Vec<String>> = r
        .costs
        .iter()
        .chain(std::iter::once(&r.total))
        .map(|c| {
            vec![
                c.step.clone(),
                c.model.clone(),
                c.tokens.input.to_string(),
                c.tokens.output.to_string(),
                usd(c.cost),
            ]
        })
        .collect();
    l.table(
        &[
            "Step",
            "Model",
            "Input tokens",
            "Output tokens",
            "Cost (USD)",
        ],
        &rows,
        &[0.26, 0.26, 0.16, 0.16, 0.16],
        &[false, false, true, true, true],
    );
    l.heading("Sources", 15.0);
    match &r.sources {
        Sources::Cited(list) => {
            for s in list {
                let line = format!(
                    "[{}] {} — {} (found by {} with {})",
                    s.n, s.title, s.url, s.agent, s.tool
                );
                l.text(&line, BODY, 0.0);
            }
        }
        Sources::Agents(list) => {
            l.text(
                "No tool sources were used; the findings rest on these agents and models:",
                BODY,
                0.0,
            );
            for (agent, model) in list {
                l.text(&format!("• {agent}: {model}"), BODY, 12.0);
            }
        }
    }
    let pages = std::mem::take(&mut l.pages);
    draw(r, &faces, pages)
}

/// An agent's or synthesis's Markdown, block by block.
fn markdown<M: Metrics>(l: &mut Layout<'_, M>, md: &str) {
    for b in blocks(md) {
        match b {
            Block::Heading(level, t) => l.heading(&t, if level <= 2 { 12.0 } else { 11.0 }),
            Block::Paragraph(t) => {
                l.text(&t, BODY, 0.0);
                l.space(4.0);
            }
            Block::Item(depth, marker, t) => {
                l.text(&format!("{marker} {t}"), BODY, 12.0 * (depth as f32 + 1.0));
            }
            Block::Code(t) => {
                l.text(&t, META, 12.0);
                l.space(4.0);
            }
            Block::Quote(t) => {
                l.text(&t, META, 12.0);
                l.space(4.0);
            }
        }
    }
}

fn draw(r: &Report, faces: &Faces, pages: Vec<layout::PageOut>) -> Result<Vec<u8>, RenderError> {
    let load = |data: &'static [u8], name: &'static str| {
        Font::new(data.into(), 0).ok_or(RenderError::FontUnusable(name))
    };
    let regular = load(REGULAR, "DejaVuSans")?;
    let bold = load(BOLD, "DejaVuSans-Bold")?;
    let cjk = load(CJK, "NotoSansCJK")?;
    let font = |f: FontId| match f {
        FontId::Regular => regular.clone(),
        FontId::Bold => bold.clone(),
        FontId::Cjk => cjk.clone(),
    };
    let settings = PageSettings::from_wh(A4.0, A4.1).ok_or(RenderError::PageSize)?;
    let mut pdf = Pdf::new();
    pdf.set_metadata(
        Metadata::new()
            .title(r.title.clone())
            .creator("mcp-orchestrator".into()),
    );
    let total = pages.len();
    let gray = Fill {
        paint: luma::Color::new(110).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    };
    for (i, p) in pages.into_iter().enumerate() {
        let mut page = pdf.start_page_with(settings.clone());
        let mut s = page.surface();
        for (y, span) in &p.runs {
            s.set_fill(Some(if span.gray {
                gray.clone()
            } else {
                Fill::default()
            }));
            s.draw_text(
                Point::from_xy(span.x, *y),
                font(span.font),
                span.size,
                &span.text,
                false,
                TextDirection::LeftToRight,
            );
        }
        s.set_fill(None);
        s.set_stroke(Some(Stroke {
            width: 0.6,
            paint: luma::Color::new(150).into(),
            ..Default::default()
        }));
        for (x1, y, x2) in &p.rules {
            let mut pb = PathBuilder::new();
            pb.move_to(*x1, *y);
            pb.line_to(*x2, *y);
            if let Some(path) = pb.finish() {
                s.draw_path(&path);
            }
        }
        s.set_stroke(None);
        // Page numbers: "Page 2 of 7", centred in the footer.
        let label = format!("Page {} of {}", i + 1, total);
        let w: f32 = label
            .chars()
            .map(|c| faces.advance(FontId::Regular, c, 8.5))
            .sum();
        s.set_fill(Some(gray.clone()));
        s.draw_text(
            Point::from_xy((A4.0 - w) / 2.0, A4.1 - MARGIN + 10.0),
            regular.clone(),
            8.5,
            &label,
            false,
            TextDirection::LeftToRight,
        );
        s.finish();
        page.finish();
    }
    pdf.finish().map_err(|e| RenderError::Pdf(format!("{e:?}")))
}
