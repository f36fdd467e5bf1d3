//! A small SVG writer for the pictures (`graph`, `matrix`): one stylesheet, an arrow
//! marker, labels on a white backing, escaping. Text only; no fonts are measured, so widths
//! are estimated from the character count.

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `s`, cut to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

const STYLE: &str = "
  text { font-family: sans-serif; fill: #111827; }
  .title { font-size: 18px; font-weight: bold; }
  .head { font-size: 12px; fill: #6b7280; text-transform: uppercase; letter-spacing: 0.05em; }
  .name { font-size: 13px; font-weight: bold; text-anchor: middle; }
  .detail { font-size: 10px; fill: #374151; text-anchor: middle; }
  .label { font-size: 10px; fill: #9a3412; text-anchor: middle; }
  .labelbg { fill: #ffffff; opacity: 0.9; }
  .node.source rect { fill: #e0ecff; stroke: #2563eb; }
  .node.group rect { fill: #ffe9c7; stroke: #c2410c; }
  .node.port rect { fill: #e6f4ea; stroke: #15803d; }
  .edge path { fill: none; }
  .edge.allow path { stroke: #c2410c; stroke-width: 1.6; }
  .edge.member path { stroke: #9ca3af; stroke-width: 1; stroke-dasharray: 4 3; }
  .cell rect { stroke: #ffffff; stroke-width: 2; }
  .cell.open rect { fill: #bbf7d0; }
  .cell.closed rect { fill: #f3f4f6; }
  .cell.self rect { fill: #d1d5db; }
  .cell.unknown rect { fill: #fde68a; }
  .cell text { font-size: 10px; text-anchor: middle; }
  .axis { font-size: 11px; font-weight: bold; }
";

/// The estimated width of a label's backing.
pub fn label_width(text: &str) -> f64 {
    text.chars().count() as f64 * 5.6 + 8.0
}

/// Places labels where they overlap neither boxes nor earlier labels: at the wanted point
/// if free, else the nearest free spot above or below it.
#[derive(Debug, Default)]
pub struct Placer {
    taken: Vec<(f64, f64, f64, f64)>,
}

impl Placer {
    /// Marks a box (x, y, width, height) as taken.
    pub fn block(&mut self, x: f64, y: f64, w: f64, h: f64) {
        self.taken.push((x, y, x + w, y + h));
    }

    /// Where to put a label wanted at (x, y) (its text baseline); the spot is then taken.
    pub fn place(&mut self, x: f64, y: f64, text: &str) -> (f64, f64) {
        let w = label_width(text);
        let free = |y: f64, taken: &[(f64, f64, f64, f64)]| {
            let (x0, y0, x1, y1) = (x - w / 2.0, y - 11.0, x + w / 2.0, y + 4.0);
            !taken
                .iter()
                .any(|&(a0, b0, a1, b1)| x0 < a1 && a0 < x1 && y0 < b1 && b0 < y1)
        };
        let y = (0..12)
            .map(|i| {
                let step = f64::from((i + 1) / 2) * 15.0;
                if i % 2 == 0 {
                    y + step
                } else {
                    y - step
                }
            })
            .find(|&y| free(y, &self.taken))
            .unwrap_or(y);
        self.taken
            .push((x - w / 2.0, y - 11.0, x + w / 2.0, y + 4.0));
        (x, y)
    }
}

/// An SVG document being written.
pub struct Svg {
    out: String,
}

impl Svg {
    /// A document of this size, with the stylesheet and the arrow marker.
    pub fn new(width: f64, height: f64) -> Svg {
        Svg {
            out: format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n<style>{STYLE}</style>\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#c2410c\"/></marker></defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
            ),
        }
    }

    /// Appends markup as is.
    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// A label centred at (x, y) on a white backing.
    pub fn label(&mut self, x: f64, y: f64, text: &str) {
        let w = label_width(text);
        self.out.push_str(&format!(
            "<rect class=\"labelbg\" x=\"{}\" y=\"{}\" width=\"{w}\" height=\"14\" rx=\"3\"/><text x=\"{x}\" y=\"{}\" class=\"label\">{}</text>",
            x - w / 2.0,
            y - 10.0,
            y + 1.0,
            esc(text)
        ));
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}
