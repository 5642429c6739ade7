//! HTML escaping and the number formats the report prints.

/// `s` escaped for HTML text and quoted attribute values: `& < > " '` become entities,
/// and control characters (which HTML forbids) become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_esc(&mut out, s);
    out
}

/// [`esc`] appended to `out`.
pub fn push_esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            // noncharacters are parse errors in HTML too
            c if is_noncharacter(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

fn is_noncharacter(c: char) -> bool {
    let u = c as u32;
    (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Digits grouped by thousands: `1234567` → `1,234,567`.
pub fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number for reading: thousands grouped from 1,000 up, no decimals from 100, one
/// decimal from 10, three significant digits below; `–` for missing or not finite.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        if a < 9.0e18 {
            int(x.round() as i64)
        } else {
            format!("{x:.3e}")
        }
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        trim(format!("{x:.1}"))
    } else if a == 0.0 {
        "0".into()
    } else if a < 1e-4 {
        format!("{x:.2e}")
    } else {
        let digits = (2 - a.log10().floor() as i32).max(0) as usize;
        trim(format!("{x:.digits$}"))
    }
}

/// [`num`] of an optional value.
pub fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_else(|| "–".into())
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A share (0..1) as a percentage with one decimal: `0.1234` → `12.3%`.
pub fn pct(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let p = 100.0 * x;
    if p != 0.0 && p.abs() < 0.1 {
        format!("{}%", num(p))
    } else {
        format!("{p:.1}%")
    }
}

/// A duration in milliseconds: `0.4 ms`, `850 ms`, `1.2 s`, `2 min 05 s`.
pub fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "–".into();
    }
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>alert(1)</script> & \"x\" 'y'"),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; &#39;y&#39;"
        );
        assert_eq!(esc("客戶\u{0}畫像"), "客戶\u{FFFD}畫像");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(int(-1000), "-1,000");
        assert_eq!(int(999), "999");
        assert_eq!(num(12345.6), "12,346");
        assert_eq!(num(152.4), "152");
        assert_eq!(num(24.36), "24.4");
        assert_eq!(num(4.56789), "4.57");
        assert_eq!(num(0.0123), "0.0123");
        assert_eq!(num(f64::NAN), "–");
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(1.0), "100.0%");
        assert_eq!(duration(850.0), "850 ms");
        assert_eq!(duration(1234.0), "1.2 s");
        assert_eq!(duration(125_000.0), "2 min 05 s");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
