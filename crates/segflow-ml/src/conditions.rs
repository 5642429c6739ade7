//! A small condition language for rule-based segments, e.g.
//! `recency_days <= 30 and frequency >= 5`.
//!
//! # Grammar
//! ```text
//! condition  := or
//! or         := and ("or" and)*
//! and        := not ("and" not)*
//! not        := "not" not | predicate
//! predicate  := "(" or ")"
//!             | operand cmp operand            cmp: <  <=  ==  !=  >=  >
//!             | column ["not"] "in" "[" literal ("," literal)* "]"
//!             | column "is" ["not"] "null"
//!             | column                          a true/false (Boolean) column
//!             | "true" | "false"
//! operand    := column | literal
//! column     := identifier | `any text in backticks`
//! literal    := number | 'text' | "text" | true | false
//! ```
//! Keywords (`and or not in is null true false`) are case-insensitive. An identifier
//! is a letter or `_` followed by letters, digits and `_` (Unicode letters count); a
//! column whose name is a keyword or not an identifier is written in backticks. Numbers are decimal (`30`, `-2.5`, `1e3`); text is quoted with `'` or
//! `"`, with `\\`, `\'`, `\"`, `\n` and `\t` escapes. `not` binds tighter than `and`,
//! which binds tighter than `or`; comparisons cannot be chained.
//!
//! # Types
//! A comparison needs both sides of one kind: numeric columns (any integer, float or
//! decimal type) with numbers, text columns (Utf8, LargeUtf8, Utf8View, dictionary of
//! text) with quoted text, Boolean columns with `true`/`false` (only `==` and `!=`),
//! date columns (Date32, Date64) with `'YYYY-MM-DD'` text. Two columns compare when they
//! are of the same kind. Text orders by Unicode code point. Integer columns compare with
//! integer literals exactly; otherwise numbers compare as 64-bit floats.
//!
//! # Nulls
//! SQL's three-valued logic: a comparison or `in` with a null (or NaN) value is
//! *unknown*; `not unknown` is unknown; `false and unknown` is false; `true or unknown`
//! is true. A row matches a condition only when it is *true*, so a null never matches
//! `x > 5` nor `not (x > 5)`: test for it with `x is null`.
//!
//! # Errors
//! Every error carries the character offset in the condition text (counting Unicode
//! characters, shown 1-based as "at character N").

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Array, Float64Array, Int64Array,
    RecordBatch, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use std::cmp::Ordering;
use std::fmt;

/// A syntax, type or evaluation error at a character offset of the condition.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at character {}: {message}", .offset + 1)]
pub struct ConditionError {
    /// Offset of the offending token, in characters from the start (0-based).
    pub offset: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ConditionError> {
    Err(ConditionError {
        offset,
        message: message.into(),
    })
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
        }
    }
    fn holds(self, o: Ordering) -> bool {
        match self {
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Ge => o != Ordering::Less,
            CmpOp::Gt => o == Ordering::Greater,
        }
    }
    /// The operator with its sides swapped (`3 < x` is `x > 3`).
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            o => o,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(f64, Option<i64>, String),
    Text(String),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    True,
    False,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("column `{s}`"),
        Tok::Number(_, _, s) => format!("number `{s}`"),
        Tok::Text(s) => format!("text '{s}'"),
        Tok::Op(o) => format!("`{o}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Comma => "`,`".into(),
        Tok::And => "`and`".into(),
        Tok::Or => "`or`".into(),
        Tok::Not => "`not`".into(),
        Tok::In => "`in`".into(),
        Tok::Is => "`is`".into(),
        Tok::Null => "`null`".into(),
        Tok::True => "`true`".into(),
        Tok::False => "`false`".into(),
        Tok::End => "the end of the condition".into(),
    }
}

fn keyword(word: &str) -> Option<Tok> {
    Some(match word.to_ascii_lowercase().as_str() {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "in" => Tok::In,
        "is" => Tok::Is,
        "null" => Tok::Null,
        "true" => Tok::True,
        "false" => Tok::False,
        _ => return None,
    })
}

fn tokenize(text: &str) -> Result<Vec<Token>, ConditionError> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let at = i;
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = c[i..(i + 2).min(c.len())].iter().collect();
        let tok = if ch.is_alphabetic() || ch == '_' {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[at..i].iter().collect();
            keyword(&word).unwrap_or(Tok::Ident(word))
        } else if ch == '`' {
            i += 1;
            let start = i;
            while i < c.len() && c[i] != '`' {
                i += 1;
            }
            if i == c.len() {
                return err(at, "this `` ` `` opens a column name that is never closed");
            }
            let name: String = c[start..i].iter().collect();
            i += 1;
            if name.is_empty() {
                return err(at, "empty column name ``");
            }
            Tok::Ident(name)
        } else if ch.is_ascii_digit()
            || ((ch == '-' || ch == '+' || ch == '.')
                && c.get(i + 1)
                    .is_some_and(|n| n.is_ascii_digit() || (*n == '.' && ch != '.')))
        {
            if ch == '-' || ch == '+' {
                i += 1;
            }
            let mut integral = true;
            while i < c.len() && c[i].is_ascii_digit() {
                i += 1;
            }
            if i < c.len() && c[i] == '.' {
                integral = false;
                i += 1;
                while i < c.len() && c[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < c.len()
                && (c[i] == 'e' || c[i] == 'E')
                && c.get(i + 1).is_some_and(|n| {
                    n.is_ascii_digit()
                        || ((*n == '-' || *n == '+')
                            && c.get(i + 2).is_some_and(|d| d.is_ascii_digit()))
                })
            {
                integral = false;
                i += 2;
                while i < c.len() && c[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // `30d`, `1.2.3`: a number glued to more word characters.
            if i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == '.') {
                let mut j = i;
                while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_' || c[j] == '.') {
                    j += 1;
                }
                let word: String = c[at..j].iter().collect();
                return err(
                    at,
                    format!("`{word}` is not a number (numbers are written like 30, -2.5 or 1e3; units are not allowed)"),
                );
            }
            let s: String = c[at..i].iter().collect();
            let v: f64 = match s.parse() {
                Ok(v) => v,
                Err(_) => return err(at, format!("`{s}` is not a number")),
            };
            if !v.is_finite() {
                return err(at, format!("`{s}` is too large"));
            }
            let int = if integral {
                s.trim_start_matches('+').parse::<i64>().ok()
            } else {
                None
            };
            Tok::Number(v, int, s)
        } else if ch == '\'' || ch == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match c.get(i) {
                    None => {
                        return err(
                            at,
                            format!("this {ch} opens a text value that is never closed"),
                        )
                    }
                    Some('\\') => {
                        let e = match c.get(i + 1) {
                            Some('\\') => '\\',
                            Some('\'') => '\'',
                            Some('"') => '"',
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some(o) => {
                                return err(
                                    i,
                                    format!(
                                    "unknown escape `\\{o}`; the escapes are \\\\ \\' \\\" \\n \\t"
                                ),
                                )
                            }
                            None => {
                                return err(
                                    at,
                                    format!("this {ch} opens a text value that is never closed"),
                                )
                            }
                        };
                        s.push(e);
                        i += 2;
                    }
                    Some(&q) if q == ch => {
                        i += 1;
                        break;
                    }
                    Some(&o) => {
                        s.push(o);
                        i += 1;
                    }
                }
            }
            Tok::Text(s)
        } else {
            let (tok, len) = match (two.as_str(), ch) {
                ("<=", _) => (Tok::Op(CmpOp::Le), 2),
                (">=", _) => (Tok::Op(CmpOp::Ge), 2),
                ("==", _) => (Tok::Op(CmpOp::Eq), 2),
                ("!=", _) => (Tok::Op(CmpOp::Ne), 2),
                ("<>", _) => return err(at, "`<>` is not an operator; write `!=`"),
                ("&&", _) | (_, '&') => return err(at, "write `and` to combine conditions"),
                ("||", _) | (_, '|') => return err(at, "write `or` to combine conditions"),
                (_, '<') => (Tok::Op(CmpOp::Lt), 1),
                (_, '>') => (Tok::Op(CmpOp::Gt), 1),
                (_, '=') => {
                    return err(at, "`=` is not an operator; write `==` to test equality")
                }
                (_, '!') => return err(at, "write `not` to negate a condition, or `!=`"),
                (_, '(') => (Tok::LParen, 1),
                (_, ')') => (Tok::RParen, 1),
                (_, '[') => (Tok::LBracket, 1),
                (_, ']') => (Tok::RBracket, 1),
                (_, ',') => (Tok::Comma, 1),
                _ => {
                    return err(
                        at,
                        format!("unexpected character `{ch}`; quote text values and put unusual column names in backticks"),
                    )
                }
            };
            i += len;
            tok
        };
        out.push(Token { tok, at });
    }
    out.push(Token {
        tok: Tok::End,
        at: c.len(),
    });
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Syntax tree

/// A literal value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number; `int` is set when it was written as an integer that fits an `i64`.
    Number {
        value: f64,
        int: Option<i64>,
    },
    Text(String),
    Bool(bool),
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Column { name: String, at: usize },
    Literal { value: Literal, at: usize },
}

impl Operand {
    fn at(&self) -> usize {
        match self {
            Operand::Column { at, .. } | Operand::Literal { at, .. } => *at,
        }
    }
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Cmp {
        op: CmpOp,
        lhs: Operand,
        rhs: Operand,
        at: usize,
    },
    In {
        column: String,
        at: usize,
        list: Vec<(Literal, usize)>,
        negated: bool,
    },
    IsNull {
        column: String,
        at: usize,
        negated: bool,
    },
    /// A bare Boolean column.
    Column {
        name: String,
        at: usize,
    },
    Const(bool),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

fn column_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && keyword(name).is_none();
    if plain {
        f.write_str(name)
    } else {
        write!(f, "`{name}`")
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number { value, int } => match int {
                Some(i) => write!(f, "{i}"),
                None => write!(f, "{value}"),
            },
            Literal::Text(s) => {
                f.write_str("'")?;
                for ch in s.chars() {
                    match ch {
                        '\\' => f.write_str("\\\\")?,
                        '\'' => f.write_str("\\'")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("'")
            }
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Column { name, .. } => column_name(f, name),
            Operand::Literal { value, .. } => value.fmt(f),
        }
    }
}

/// The condition fully parenthesised: `and`/`or` groups in `( )`, `not (x)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Cmp { op, lhs, rhs, .. } => write!(f, "{lhs} {op} {rhs}"),
            Expr::In {
                column,
                list,
                negated,
                ..
            } => {
                column_name(f, column)?;
                f.write_str(if *negated { " not in [" } else { " in [" })?;
                for (k, (l, _)) in list.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    l.fmt(f)?;
                }
                f.write_str("]")
            }
            Expr::IsNull {
                column, negated, ..
            } => {
                column_name(f, column)?;
                f.write_str(if *negated { " is not null" } else { " is null" })
            }
            Expr::Column { name, .. } => column_name(f, name),
            Expr::Const(b) => write!(f, "{b}"),
            Expr::Not(a) => write!(f, "not ({a})"),
            Expr::And(a, b) => write!(f, "({a} and {b})"),
            Expr::Or(a, b) => write!(f, "({a} or {b})"),
        }
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }
    fn next(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn or(&mut self) -> Result<Expr, ConditionError> {
        let mut e = self.and()?;
        while self.peek().tok == Tok::Or {
            self.next();
            let r = self.and()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut e = self.not()?;
        while self.peek().tok == Tok::And {
            self.next();
            let r = self.not()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, ConditionError> {
        if self.peek().tok == Tok::Not {
            self.next();
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn operand(&mut self, after: &str) -> Result<Operand, ConditionError> {
        let t = self.next();
        let at = t.at;
        Ok(match t.tok {
            Tok::Ident(name) => Operand::Column { name, at },
            Tok::Number(value, int, _) => Operand::Literal {
                value: Literal::Number { value, int },
                at,
            },
            Tok::Text(s) => Operand::Literal {
                value: Literal::Text(s),
                at,
            },
            Tok::True | Tok::False => Operand::Literal {
                value: Literal::Bool(t.tok == Tok::True),
                at,
            },
            Tok::Null => {
                return err(
                    at,
                    "nothing compares equal to null; test for it with `COLUMN is null` or `COLUMN is not null`",
                )
            }
            other => {
                return err(
                    at,
                    format!(
                        "expected a column or a value {after}, found {}",
                        describe(&other)
                    ),
                )
            }
        })
    }

    fn literal(&mut self) -> Result<(Literal, usize), ConditionError> {
        match self.operand("in the list")? {
            Operand::Literal { value, at } => Ok((value, at)),
            Operand::Column { name, at } => err(
                at,
                format!("a list holds values, but `{name}` is a column name; quote text values: '{name}'"),
            ),
        }
    }

    fn predicate(&mut self) -> Result<Expr, ConditionError> {
        let start = self.peek().clone();
        if start.tok == Tok::LParen {
            self.next();
            let e = self.or()?;
            let close = self.next();
            if close.tok != Tok::RParen {
                return err(
                    close.at,
                    format!(
                        "expected `)` to close the `(` at character {}, found {}",
                        start.at + 1,
                        describe(&close.tok)
                    ),
                );
            }
            return Ok(e);
        }
        let after = match self.pos.checked_sub(1).map(|p| &self.toks[p].tok) {
            Some(prev) => format!("after {}", describe(prev)),
            None => "at the start of the condition".to_string(),
        };
        let lhs = self.operand(&after)?;
        let op_tok = self.peek().clone();
        match op_tok.tok {
            Tok::Op(op) => {
                self.next();
                let rhs = self.operand(&format!("after `{op}`"))?;
                Ok(Expr::Cmp {
                    op,
                    lhs,
                    rhs,
                    at: op_tok.at,
                })
            }
            Tok::In | Tok::Not => {
                let negated = op_tok.tok == Tok::Not;
                self.next();
                if negated {
                    let t = self.next();
                    if t.tok != Tok::In {
                        return err(
                            t.at,
                            format!("expected `in` after `not`, found {}", describe(&t.tok)),
                        );
                    }
                }
                let (column, at) = match lhs {
                    Operand::Column { name, at } => (name, at),
                    Operand::Literal { at, .. } => {
                        return err(at, "`in` tests a column: write `COLUMN in [...]`")
                    }
                };
                let open = self.next();
                if open.tok != Tok::LBracket {
                    return err(
                        open.at,
                        format!(
                            "expected `[` to start the list after `in`, found {}",
                            describe(&open.tok)
                        ),
                    );
                }
                let mut list = Vec::new();
                if self.peek().tok == Tok::RBracket {
                    return err(self.peek().at, "the list is empty; list at least one value");
                }
                loop {
                    list.push(self.literal()?);
                    let t = self.next();
                    match t.tok {
                        Tok::Comma => continue,
                        Tok::RBracket => break,
                        other => {
                            return err(
                                t.at,
                                format!(
                                    "expected `,` or `]` in the list, found {}",
                                    describe(&other)
                                ),
                            )
                        }
                    }
                }
                Ok(Expr::In {
                    column,
                    at,
                    list,
                    negated,
                })
            }
            Tok::Is => {
                self.next();
                let mut negated = false;
                if self.peek().tok == Tok::Not {
                    self.next();
                    negated = true;
                }
                let t = self.next();
                if t.tok != Tok::Null {
                    return err(
                        t.at,
                        format!(
                            "expected `null` after `is{}`, found {}",
                            if negated { " not" } else { "" },
                            describe(&t.tok)
                        ),
                    );
                }
                match lhs {
                    Operand::Column { name, at } => Ok(Expr::IsNull {
                        column: name,
                        at,
                        negated,
                    }),
                    Operand::Literal { at, .. } => {
                        err(at, "`is null` tests a column: write `COLUMN is null`")
                    }
                }
            }
            _ => match lhs {
                Operand::Column { name, at } => Ok(Expr::Column { name, at }),
                Operand::Literal {
                    value: Literal::Bool(b),
                    ..
                } => Ok(Expr::Const(b)),
                Operand::Literal { at, .. } => err(
                    op_tok.at.max(at),
                    format!(
                        "expected a comparison (<, <=, ==, !=, >=, >) after the value, found {}",
                        describe(&op_tok.tok)
                    ),
                ),
            },
        }
    }
}

/// Parse a condition (syntax only; [`Condition::check`] resolves the columns).
pub fn parse(text: &str) -> Result<Expr, ConditionError> {
    let toks = tokenize(text)?;
    if toks.len() == 1 {
        return err(0, "the condition is empty");
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.or()?;
    let t = p.peek().clone();
    match t.tok {
        Tok::End => Ok(e),
        Tok::Op(_) => err(
            t.at,
            "comparisons cannot be chained; write `a < b and b < c`",
        ),
        Tok::RParen => err(t.at, "this `)` has no matching `(`"),
        other => {
            let hint = match (&other, &e) {
                (Tok::Ident(second), Expr::Column { name, .. }) => format!(
                    "if `{name} {second}` is one column name, write it in backticks: `{name} {second}`"
                ),
                _ => "join conditions with `and` or `or`".to_string(),
            };
            err(
                t.at,
                format!(
                    "unexpected {} after a complete condition; {hint}",
                    describe(&other)
                ),
            )
        }
    }
}

// ---------------------------------------------------------------------------------
// Type checking

/// The kind of value a column holds, as far as conditions are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integer columns (compared exactly with integers).
    Integer,
    /// Float and decimal columns, and unsigned 64-bit integers.
    Float,
    Text,
    Bool,
    Date,
}

impl Kind {
    /// The kind of an Arrow type, or `None` when conditions cannot use it.
    pub fn of(t: &DataType) -> Option<Kind> {
        use DataType::*;
        Some(match t {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => Kind::Integer,
            UInt64 | Float16 | Float32 | Float64 | Decimal128(..) | Decimal256(..) => Kind::Float,
            Utf8 | LargeUtf8 | Utf8View => Kind::Text,
            Dictionary(_, v) if matches!(v.as_ref(), Utf8 | LargeUtf8 | Utf8View) => Kind::Text,
            Boolean => Kind::Bool,
            Date32 | Date64 => Kind::Date,
            _ => return None,
        })
    }
    fn numeric(self) -> bool {
        matches!(self, Kind::Integer | Kind::Float)
    }
    fn family(self) -> &'static str {
        match self {
            Kind::Integer | Kind::Float => "numeric",
            Kind::Text => "text",
            Kind::Bool => "true/false",
            Kind::Date => "a date",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Date(i32),
}

#[derive(Debug, Clone, PartialEq)]
enum Src {
    Col(usize),
    Lit(Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Cmp(CmpOp, Src, Src),
    In(usize, Vec<Value>, bool),
    IsNull(usize, bool),
    Truthy(usize),
    Const(bool),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// A condition checked against a schema, ready to evaluate on record batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    columns: Vec<(String, Kind, usize)>,
    root: Node,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) as i32)
}

struct Checker<'a> {
    schema: &'a Schema,
    columns: Vec<(String, Kind, usize)>,
}

impl Checker<'_> {
    fn column(&mut self, name: &str, at: usize) -> Result<(usize, Kind), ConditionError> {
        if let Some(i) = self.columns.iter().position(|c| c.0 == name) {
            return Ok((i, self.columns[i].1));
        }
        let Ok(idx) = self.schema.index_of(name) else {
            let have: Vec<&str> = self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            return err(
                at,
                format!(
                    "column `{name}` is not in the input (it has: {}); quote text values: '{name}'",
                    if have.is_empty() {
                        "no columns".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            );
        };
        let t = self.schema.field(idx).data_type();
        let Some(kind) = Kind::of(t) else {
            return err(
                at,
                format!("column `{name}` has type {t}, which conditions cannot compare (they handle numbers, text, true/false and dates)"),
            );
        };
        self.columns.push((name.to_string(), kind, idx));
        Ok((self.columns.len() - 1, kind))
    }

    /// A literal as a value for a column of `kind`.
    fn value(
        &self,
        lit: &Literal,
        at: usize,
        kind: Kind,
        column: &str,
    ) -> Result<Value, ConditionError> {
        match (lit, kind) {
            (Literal::Number { value, int }, Kind::Integer) => Ok(match int {
                Some(i) => Value::Int(*i),
                None => Value::Float(*value),
            }),
            (Literal::Number { value, .. }, Kind::Float) => Ok(Value::Float(*value)),
            (Literal::Text(s), Kind::Text) => Ok(Value::Text(s.clone())),
            (Literal::Bool(b), Kind::Bool) => Ok(Value::Bool(*b)),
            (Literal::Text(s), Kind::Date) => match parse_date(s) {
                Some(d) => Ok(Value::Date(d)),
                None => err(
                    at,
                    format!("column `{column}` is a date, but '{s}' is not a date written 'YYYY-MM-DD'"),
                ),
            },
            (Literal::Text(s), k) if k.numeric() => err(
                at,
                format!("column `{column}` is numeric, but '{s}' is text; write the number without quotes"),
            ),
            (Literal::Number { .. }, Kind::Text) => err(
                at,
                format!("column `{column}` is text, but this is a number; quote it to compare as text"),
            ),
            (Literal::Number { .. }, Kind::Date) => err(
                at,
                format!("column `{column}` is a date; compare it with a quoted date such as '2024-12-31'"),
            ),
            (_, k) => err(
                at,
                format!("column `{column}` is {}, and this value is not", k.family()),
            ),
        }
    }

    fn node(&mut self, e: &Expr) -> Result<Node, ConditionError> {
        Ok(match e {
            Expr::Cmp { op, lhs, rhs, at } => {
                let (op, lhs, rhs) = match (lhs, rhs) {
                    (Operand::Literal { .. }, Operand::Column { .. }) => (op.flipped(), rhs, lhs),
                    _ => (*op, lhs, rhs),
                };
                let Operand::Column { name, at: cat } = lhs else {
                    return err(
                        lhs.at(),
                        "both sides are values; a comparison needs at least one column",
                    );
                };
                let (ci, kind) = self.column(name, *cat)?;
                if kind == Kind::Bool && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    return err(
                        *at,
                        format!("column `{name}` is true/false: compare it with `==` or `!=`, not `{op}`"),
                    );
                }
                let r = match rhs {
                    Operand::Literal { value, at } => Src::Lit(self.value(value, *at, kind, name)?),
                    Operand::Column { name: rn, at: rat } => {
                        let (ri, rkind) = self.column(rn, *rat)?;
                        let fits = kind == rkind || (kind.numeric() && rkind.numeric());
                        if !fits {
                            return err(
                                *at,
                                format!(
                                    "`{name}` is {} but `{rn}` is {}; they cannot be compared",
                                    kind.family(),
                                    rkind.family()
                                ),
                            );
                        }
                        Src::Col(ri)
                    }
                };
                Node::Cmp(op, Src::Col(ci), r)
            }
            Expr::In {
                column,
                at,
                list,
                negated,
            } => {
                let (ci, kind) = self.column(column, *at)?;
                let values = list
                    .iter()
                    .map(|(l, lat)| self.value(l, *lat, kind, column))
                    .collect::<Result<Vec<_>, _>>()?;
                Node::In(ci, values, *negated)
            }
            Expr::IsNull {
                column,
                at,
                negated,
            } => Node::IsNull(self.column(column, *at)?.0, *negated),
            Expr::Column { name, at } => {
                let (ci, kind) = self.column(name, *at)?;
                if kind != Kind::Bool {
                    return err(
                        *at,
                        format!(
                            "column `{name}` is {}, not true/false; compare it with a value, e.g. `{name} > 0`",
                            kind.family()
                        ),
                    );
                }
                Node::Truthy(ci)
            }
            Expr::Const(b) => Node::Const(*b),
            Expr::Not(a) => Node::Not(Box::new(self.node(a)?)),
            Expr::And(a, b) => Node::And(Box::new(self.node(a)?), Box::new(self.node(b)?)),
            Expr::Or(a, b) => Node::Or(Box::new(self.node(a)?), Box::new(self.node(b)?)),
        })
    }
}

// ---------------------------------------------------------------------------------
// Evaluation

enum View {
    Int(Int64Array),
    Float(Float64Array),
    Text(StringArray),
    Bool(BooleanArray),
    Date(Date32Array),
}

#[derive(Clone, Copy)]
enum V<'a> {
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
    Date(i32),
}

impl View {
    fn get(&self, i: usize) -> Option<V<'_>> {
        macro_rules! at {
            ($a:expr, $v:expr) => {
                if $a.is_null(i) {
                    None
                } else {
                    Some($v)
                }
            };
        }
        match self {
            View::Int(a) => at!(a, V::Int(a.value(i))),
            View::Float(a) => {
                if a.is_null(i) || a.value(i).is_nan() {
                    None
                } else {
                    Some(V::Float(a.value(i)))
                }
            }
            View::Text(a) => at!(a, V::Text(a.value(i))),
            View::Bool(a) => at!(a, V::Bool(a.value(i))),
            View::Date(a) => at!(a, V::Date(a.value(i))),
        }
    }
}

impl Value {
    fn v(&self) -> Option<V<'_>> {
        Some(match self {
            Value::Int(i) => V::Int(*i),
            Value::Float(f) if f.is_nan() => return None,
            Value::Float(f) => V::Float(*f),
            Value::Text(s) => V::Text(s),
            Value::Bool(b) => V::Bool(*b),
            Value::Date(d) => V::Date(*d),
        })
    }
}

fn compare(a: V<'_>, b: V<'_>) -> Option<Ordering> {
    match (a, b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(&y)),
        (V::Int(x), V::Float(y)) => (x as f64).partial_cmp(&y),
        (V::Float(x), V::Int(y)) => x.partial_cmp(&(y as f64)),
        (V::Float(x), V::Float(y)) => x.partial_cmp(&y),
        (V::Text(x), V::Text(y)) => Some(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(&y)),
        (V::Date(x), V::Date(y)) => Some(x.cmp(&y)),
        _ => None,
    }
}

fn and3(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    if a == Some(false) {
        return Some(false);
    }
    match (a, b()) {
        (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or3(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    if a == Some(true) {
        return Some(true);
    }
    match (a, b()) {
        (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn src<'a>(s: &'a Src, cols: &'a [View], i: usize) -> Option<V<'a>> {
    match s {
        Src::Col(c) => cols[*c].get(i),
        Src::Lit(v) => v.v(),
    }
}

fn eval_row(n: &Node, cols: &[View], i: usize) -> Option<bool> {
    match n {
        Node::Cmp(op, a, b) => {
            let (a, b) = (src(a, cols, i)?, src(b, cols, i)?);
            compare(a, b).map(|o| op.holds(o))
        }
        Node::In(c, list, negated) => {
            let v = cols[*c].get(i)?;
            let mut unknown = false;
            let mut found = false;
            for l in list {
                match l.v().and_then(|l| compare(v, l)) {
                    Some(Ordering::Equal) => {
                        found = true;
                        break;
                    }
                    Some(_) => {}
                    None => unknown = true,
                }
            }
            if found {
                Some(!negated)
            } else if unknown {
                None
            } else {
                Some(*negated)
            }
        }
        Node::IsNull(c, negated) => Some(cols[*c].get(i).is_none() != *negated),
        Node::Truthy(c) => match cols[*c].get(i)? {
            V::Bool(b) => Some(b),
            _ => None,
        },
        Node::Const(b) => Some(*b),
        Node::Not(a) => eval_row(a, cols, i).map(|b| !b),
        Node::And(a, b) => and3(eval_row(a, cols, i), || eval_row(b, cols, i)),
        Node::Or(a, b) => or3(eval_row(a, cols, i), || eval_row(b, cols, i)),
    }
}

impl Condition {
    /// Parse `text` and check it against `schema`: every column exists and every
    /// comparison is between values of one kind.
    pub fn new(text: &str, schema: &Schema) -> Result<Condition, ConditionError> {
        let expr = parse(text)?;
        let mut ck = Checker {
            schema,
            columns: Vec::new(),
        };
        let root = ck.node(&expr)?;
        Ok(Condition {
            text: text.to_string(),
            columns: ck.columns,
            root,
        })
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The columns the condition reads, in order of first use.
    pub fn columns(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.0.as_str()).collect()
    }

    fn views(&self, batch: &RecordBatch) -> Result<Vec<View>, ConditionError> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (name, kind, _) in &self.columns {
            let Some(col) = batch.column_by_name(name) else {
                return err(
                    self.text
                        .find(name.as_str())
                        .map_or(0, |b| self.text[..b].chars().count()),
                    format!("column `{name}` is missing from the data"),
                );
            };
            let to = match kind {
                Kind::Integer => DataType::Int64,
                Kind::Float => DataType::Float64,
                Kind::Text => DataType::Utf8,
                Kind::Bool => DataType::Boolean,
                Kind::Date => DataType::Date32,
            };
            let c: ArrayRef = cast(col, &to).map_err(|e| ConditionError {
                offset: 0,
                message: format!("reading column `{name}`: {e}"),
            })?;
            let any = c.as_any();
            let view = match kind {
                Kind::Integer => any.downcast_ref::<Int64Array>().cloned().map(View::Int),
                Kind::Float => any.downcast_ref::<Float64Array>().cloned().map(View::Float),
                Kind::Text => any.downcast_ref::<StringArray>().cloned().map(View::Text),
                Kind::Bool => any.downcast_ref::<BooleanArray>().cloned().map(View::Bool),
                Kind::Date => any.downcast_ref::<Date32Array>().cloned().map(View::Date),
            };
            match view {
                Some(v) => out.push(v),
                None => {
                    return err(0, format!("column `{name}` could not be read as {kind:?}"));
                }
            }
        }
        Ok(out)
    }

    /// Evaluate on every row of `batch`: true, false, or null for *unknown*.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, ConditionError> {
        let views = self.views(batch)?;
        let mut b = BooleanBuilder::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            b.append_option(eval_row(&self.root, &views, i));
        }
        Ok(b.finish())
    }

    /// Whether each row of `batch` matches (the condition is true; unknown does not
    /// match).
    pub fn matches(&self, batch: &RecordBatch) -> Result<Vec<bool>, ConditionError> {
        let views = self.views(batch)?;
        Ok((0..batch.num_rows())
            .map(|i| eval_row(&self.root, &views, i) == Some(true))
            .collect())
    }
}

/// Assign each row of `batch` to the first condition it matches (`conditions.len()`
/// when none matches: the default bucket).
pub fn first_match(
    conditions: &[Condition],
    batch: &RecordBatch,
) -> Result<Vec<usize>, (usize, ConditionError)> {
    let views = conditions
        .iter()
        .enumerate()
        .map(|(k, c)| c.views(batch).map_err(|e| (k, e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|i| {
            conditions
                .iter()
                .zip(&views)
                .position(|(c, v)| eval_row(&c.root, v, i) == Some(true))
                .unwrap_or(conditions.len())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray as S};
    use arrow::datatypes::Field;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("recency", DataType::Int64, true),
            Field::new("frequency", DataType::Int32, true),
            Field::new("spend", DataType::Float64, true),
            Field::new("channel", DataType::Utf8, true),
            Field::new("vip", DataType::Boolean, true),
            Field::new("first", DataType::Date32, true),
            Field::new("and", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(10),
                    Some(40),
                    None,
                    Some(400),
                    Some(30),
                ])),
                Arc::new(Int32Array::from(vec![
                    Some(6),
                    Some(1),
                    Some(3),
                    None,
                    Some(5),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(100.5),
                    Some(f64::NAN),
                    Some(20.0),
                    Some(0.0),
                    None,
                ])),
                Arc::new(S::from(vec![
                    Some("web"),
                    Some("store"),
                    None,
                    Some("app"),
                    Some("web"),
                ])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ])),
                Arc::new(Date32Array::from(vec![
                    Some(parse_date("2024-01-01").unwrap()),
                    Some(parse_date("2024-06-15").unwrap()),
                    None,
                    Some(parse_date("2023-12-31").unwrap()),
                    Some(parse_date("2025-02-28").unwrap()),
                ])),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
            ],
        )
        .unwrap()
    }

    fn eval(text: &str) -> Vec<Option<bool>> {
        let b = batch();
        let c = Condition::new(text, &b.schema()).unwrap_or_else(|e| panic!("{text}: {e}"));
        c.evaluate(&b).unwrap().iter().collect()
    }

    fn error(text: &str) -> ConditionError {
        let b = batch();
        Condition::new(text, &b.schema()).expect_err(text)
    }

    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);
    const U: Option<bool> = None;

    #[test]
    fn comparisons() {
        assert_eq!(eval("recency <= 30"), [T, F, U, F, T]);
        assert_eq!(eval("30 >= recency"), [T, F, U, F, T]);
        assert_eq!(eval("recency == 40"), [F, T, U, F, F]);
        assert_eq!(eval("recency != 40"), [T, F, U, T, T]);
        assert_eq!(eval("spend > 20"), [T, U, F, F, U]);
        assert_eq!(eval("spend >= 2e1"), [T, U, T, F, U]);
        assert_eq!(eval("recency < 40.5"), [T, T, U, F, T]);
        assert_eq!(eval("channel == 'web'"), [T, F, U, F, T]);
        assert_eq!(eval("channel < \"b\""), [F, F, U, T, F]);
        assert_eq!(eval("vip == true"), [T, F, U, T, F]);
        assert_eq!(eval("vip"), [T, F, U, T, F]);
        assert_eq!(eval("first >= '2024-06-15'"), [F, T, U, F, T]);
        assert_eq!(eval("recency > frequency"), [T, T, U, U, T]);
        assert_eq!(eval("`and` >= 4"), [F, F, F, T, T]);
        assert_eq!(eval("recency >= -5"), [T, T, U, T, T]);
    }

    #[test]
    fn lists_and_nulls() {
        assert_eq!(eval("channel in ['web', 'app']"), [T, F, U, T, T]);
        assert_eq!(eval("channel not in ['web', 'app']"), [F, T, U, F, F]);
        assert_eq!(eval("recency in [10, 400]"), [T, F, U, T, F]);
        assert_eq!(eval("spend is null"), [F, T, F, F, T]);
        assert_eq!(eval("recency is not null"), [T, T, F, T, T]);
        // SQL logic: unknown stays unknown under not; and/or absorb it when they can.
        assert_eq!(eval("not (spend > 20)"), [F, U, T, T, U]);
        assert_eq!(eval("spend > 20 or recency < 50"), [T, T, U, F, T]);
        assert_eq!(eval("spend > 20 and recency < 50"), [T, U, F, F, U]);
    }

    #[test]
    fn precedence() {
        // not > and > or
        let shape = |t: &str| parse(t).unwrap().to_string();
        assert_eq!(
            shape("not a > 1 and b > 2 or c > 3"),
            "((not (a > 1) and b > 2) or c > 3)"
        );
        assert_eq!(
            shape("a > 1 or b > 2 and c > 3"),
            "(a > 1 or (b > 2 and c > 3))"
        );
        assert_eq!(
            shape("a > 1 AND b > 2 Or not not c > 3"),
            "((a > 1 and b > 2) or not (not (c > 3)))"
        );
        assert_eq!(
            shape("not (a > 1 or b in ['x', \"it's\"]) and `odd name` is not null"),
            "(not ((a > 1 or b in ['x', 'it\\'s'])) and `odd name` is not null)"
        );
        assert_eq!(shape("x not in [1, -2.5]"), "x not in [1, -2.5]");
        assert_eq!(shape("((a == b))"), "a == b");
        assert_eq!(
            eval("recency < 50 or frequency > 2 and channel == 'app'"),
            [T, T, U, U, T]
        );
        assert_eq!(
            eval("(recency < 50 or frequency > 2) and channel == 'app'"),
            [F, F, U, U, F]
        );
    }

    #[test]
    fn syntax_errors_point_at_the_character() {
        let cases = [
            (
                "recency <= 30 and and frequency >= 5",
                18,
                "expected a column or a value after `and`, found `and`",
            ),
            (
                "not",
                3,
                "expected a column or a value after `not`, found the end",
            ),
            (
                ") or x > 1",
                0,
                "expected a column or a value at the start of the condition, found `)`",
            ),
            ("recency = 30", 8, "write `==`"),
            ("recency <= 30 && frequency > 1", 14, "write `and`"),
            ("recency <= ", 11, "the end of the condition"),
            (
                "(recency <= 30",
                14,
                "expected `)` to close the `(` at character 1",
            ),
            ("recency <= 30)", 13, "no matching `(`"),
            ("channel == 'web", 11, "never closed"),
            ("recency <= 30d", 11, "`30d` is not a number"),
            (
                "recency <= 30 frequency",
                14,
                "join conditions with `and` or `or`",
            ),
            ("1 < recency < 5", 12, "cannot be chained"),
            ("channel in ['a' 'b']", 16, "expected `,` or `]`"),
            ("channel in []", 12, "the list is empty"),
            ("channel in 'a'", 11, "expected `[`"),
            ("spend == null", 9, "is null"),
            ("recency is 5", 11, "expected `null`"),
            ("", 0, "empty"),
            ("   ", 0, "empty"),
            ("recency # 5", 8, "unexpected character `#`"),
            ("recency <> 5", 8, "write `!=`"),
            ("`recency <= 5", 0, "never closed"),
            ("5", 1, "expected a comparison"),
        ];
        for (text, offset, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.offset, offset, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
            assert!(e
                .to_string()
                .starts_with(&format!("at character {}:", offset + 1)));
        }
        // Offsets count characters, not bytes.
        let e = parse("channel == 'café' ànd x > 1").unwrap_err();
        assert_eq!(e.offset, 18, "{e}");
    }

    #[test]
    fn type_errors_point_at_the_operand() {
        let cases = [
            ("recency <= '30'", 11, "write the number without quotes"),
            ("channel == web", 11, "column `web` is not in the input"),
            ("channel == 5", 11, "quote it"),
            ("vip > true", 4, "compare it with `==` or `!=`"),
            ("first > '2024-13-01'", 8, "not a date"),
            ("first > 5", 8, "quoted date"),
            ("recency < channel", 8, "cannot be compared"),
            ("recency", 0, "not true/false"),
            ("frequency in [1, 'x']", 17, "without quotes"),
            (
                "recency >= 1 and missing > 2",
                17,
                "column `missing` is not in the input",
            ),
            ("1 < 2", 0, "both sides are values"),
        ];
        for (text, offset, needle) in cases {
            let e = error(text);
            assert_eq!(e.offset, offset, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn first_match_with_default() {
        let b = batch();
        let s = b.schema();
        let conds = [
            Condition::new("recency <= 30 and frequency >= 5", &s).unwrap(),
            Condition::new("recency <= 60", &s).unwrap(),
        ];
        assert_eq!(first_match(&conds, &b).unwrap(), [0, 1, 2, 2, 0]);
    }

    #[test]
    fn integers_compare_exactly() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![9_007_199_254_740_993i64]))],
        )
        .unwrap();
        let c = Condition::new("id == 9007199254740992", &schema).unwrap();
        assert_eq!(c.matches(&b).unwrap(), [false]);
        let c = Condition::new("id == 9007199254740993", &schema).unwrap();
        assert_eq!(c.matches(&b).unwrap(), [true]);
    }

    #[test]
    fn unicode_and_backticked_column_names() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("消費金額", DataType::Float64, false),
            Field::new("order count", DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Float64Array::from(vec![50.0, 150.0])),
                Arc::new(Int64Array::from(vec![3, 1])),
            ],
        )
        .unwrap();
        let c = Condition::new("消費金額 > 100 or `order count` >= 3", &schema).unwrap();
        assert_eq!(c.matches(&b).unwrap(), [true, true]);
        assert_eq!(c.columns(), ["消費金額", "order count"]);
        let e = Condition::new("order count >= 3", &schema).unwrap_err();
        assert_eq!(e.offset, 6, "{e}");
        assert!(e.message.contains("write it in backticks"), "{e}");
    }

    #[test]
    fn dates_parse() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2024-1-01"), None);
    }
}
