//! Recursive-descent parser (over the scanner in `scan.rs`) for MLflow filter and `order_by` strings.
//!
//! ```text
//! filter     := ws* [ clause ( ws+ AND ws+ clause )* ] ws*
//! clause     := ident ws* op ws* value
//! ident      := part [ "." key ]            -- without ".", part is an attribute name
//! part       := word | quoted
//! key        := quoted | keychar+           -- keychar: letter, digit, "_", "."
//! op         := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN | IS NULL | IS NOT NULL
//! value      := 'str' | "str" | number | "(" str ("," str)* ")" | word (rejected later)
//! order_by   := ws* ident [ ws+ (ASC | DESC) ] ws*
//! ```
//!
//! The parser is purely syntactic: entity types, keys and operator/value compatibility are checked
//! by the compiler in `sql.rs`, which knows whether it is searching runs or experiments.

use super::scan::{is_key_char, is_word_char, is_word_start, Ctx, Scanner};
use super::{shorten, SearchError};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

/// `[<prefix>.]<key>` with quotes removed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ident {
    /// Entity type as written, `None` when the identifier has no `.`.
    pub prefix: Option<String>,
    pub key: String,
    /// Source text, for messages.
    pub text: String,
}

/// The right-hand side of a clause, as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    /// `'...'` or `"..."`.
    Str(String),
    /// A numeric literal; `text` is the source spelling.
    Num { text: String, value: f64 },
    /// `('a', "b")` — only after IN / NOT IN.
    List(Vec<String>),
    /// An unquoted word (`abc`, `true`, `NULL`) — always rejected by the compiler with a message
    /// that fits the identifier's type.
    Bare(String),
    /// No value (IS NULL / IS NOT NULL).
    Nothing,
}

impl Literal {
    /// How the value was written, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Literal::Str(s) => format!("quoted string '{s}'"),
            Literal::Num { text, .. } => format!("number {text}"),
            Literal::List(_) => "a list".to_string(),
            Literal::Bare(w) => format!("unquoted value {w}"),
            Literal::Nothing => "no value".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    pub ident: Ident,
    pub op: Op,
    pub value: Literal,
    /// Source text of the whole clause, for messages.
    pub text: String,
}

/// Parses a filter string into its AND-ed clauses (empty / blank filter → no clauses).
pub(crate) fn parse_filter(filter: &str) -> Result<Vec<Clause>, SearchError> {
    let mut s = Scanner::new(filter, Ctx::Filter);
    let mut clauses = Vec::new();
    s.skip_ws();
    if s.at_end() {
        return Ok(clauses);
    }
    loop {
        let clause = s.clause()?;
        s.skip_ws();
        if s.at_end() {
            clauses.push(clause);
            return Ok(clauses);
        }
        let before = s.pos;
        match s.word() {
            Some(w) if w.eq_ignore_ascii_case("AND") => {
                s.skip_ws();
                if s.at_end() {
                    return Err(s.err_at(before, "the filter ends with AND but no clause follows"));
                }
            }
            Some(w) if w.eq_ignore_ascii_case("OR") => {
                return Err(s.err_at(
                    before,
                    "'OR' is not supported; only clauses joined with AND are allowed",
                ));
            }
            _ => {
                s.pos = before;
                return Err(s.err(&format!(
                    "unexpected '{}' after clause '{}'; clauses must be joined with AND",
                    s.snippet(),
                    clause.text
                )));
            }
        }
        clauses.push(clause);
    }
}

/// Parses one `order_by` entry into its identifier and direction (`true` = ascending).
pub(crate) fn parse_order_by(entry: &str) -> Result<(Ident, bool), SearchError> {
    let mut s = Scanner::new(entry, Ctx::OrderBy);
    s.skip_ws();
    if s.at_end() {
        return Err(s.err("the order_by entry is empty"));
    }
    let ident = s.ident()?;
    s.skip_ws();
    let mut ascending = true;
    if !s.at_end() {
        let before = s.pos;
        match s.word() {
            Some(w) if w.eq_ignore_ascii_case("ASC") => {}
            Some(w) if w.eq_ignore_ascii_case("DESC") => ascending = false,
            Some(w) => {
                return Err(s.err_at(
                    before,
                    &format!("invalid ordering key '{w}'; expected ASC or DESC"),
                ))
            }
            None => {
                return Err(s.err(&format!(
                    "unexpected '{}' after '{}'",
                    s.snippet(),
                    ident.text
                )))
            }
        }
        s.skip_ws();
        if !s.at_end() {
            return Err(s.err(&format!("unexpected '{}'", s.snippet())));
        }
    }
    Ok((ident, ascending))
}

impl Scanner<'_> {
    fn ident(&mut self) -> Result<Ident, SearchError> {
        let start = self.pos;
        let first = match self.peek() {
            Some('`' | '"') => self.quoted()?,
            Some(c) if is_word_start(c) => {
                let word = self.take_while(is_word_char);
                let keyword = ["AND", "OR"].iter().any(|k| word.eq_ignore_ascii_case(k));
                if keyword && self.peek() != Some('.') {
                    return Err(self.err_at(
                        start,
                        &format!("unexpected '{word}' where a clause was expected"),
                    ));
                }
                word.to_string()
            }
            Some('(') => {
                return Err(self.err("parentheses are not supported; join clauses with AND"))
            }
            Some(_) => {
                return Err(self.err(&format!(
                    "expected an identifier such as metrics.<key>, params.<key>, tags.<key> or \
                     an attribute name, found '{}'",
                    self.snippet()
                )))
            }
            None => return Err(self.err("expected an identifier, found end of input")),
        };
        if self.peek() != Some('.') {
            return Ok(Ident {
                prefix: None,
                key: first,
                text: self.src[start..self.pos].to_string(),
            });
        }
        self.bump();
        let key = match self.peek() {
            Some('`' | '"' | '\'') => self.quoted()?,
            Some(c) if is_key_char(c) => self.take_while(is_key_char).to_string(),
            _ => {
                return Err(self.err(&format!(
                    "missing key after '{}' (quote keys with special characters in backticks)",
                    &self.src[start..self.pos]
                )))
            }
        };
        let text = self.src[start..self.pos].to_string();
        if key.is_empty() {
            return Err(self.err_at(start, &format!("empty key in '{text}'")));
        }
        Ok(Ident {
            prefix: Some(first),
            key,
            text,
        })
    }

    fn clause(&mut self) -> Result<Clause, SearchError> {
        let start = self.pos;
        let ident = self.ident()?;
        self.skip_ws();
        let op = self.op(&ident)?;
        let value = self.value(&ident, op)?;
        Ok(Clause {
            ident,
            op,
            value,
            text: self.src[start..self.pos].to_string(),
        })
    }

    fn op(&mut self, ident: &Ident) -> Result<Op, SearchError> {
        let start = self.pos;
        let rest = self.rest();
        for (sym, op) in [("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge)] {
            if rest.starts_with(sym) {
                self.pos += sym.len();
                return Ok(op);
            }
        }
        for bad in ["==", "<>"] {
            if rest.starts_with(bad) {
                return Err(self.err(&format!("invalid comparator '{bad}'")));
            }
        }
        for (sym, op) in [("=", Op::Eq), ("<", Op::Lt), (">", Op::Gt)] {
            if rest.starts_with(sym) {
                self.pos += sym.len();
                return Ok(op);
            }
        }
        let expected = |s: &Self| {
            s.err_at(
                start,
                &format!(
                    "expected a comparison operator after '{}', found '{}' (quote keys with \
                     special characters in backticks)",
                    ident.text,
                    shorten(&s.src[start..], 20)
                ),
            )
        };
        let Some(word) = self.word() else {
            return Err(expected(self));
        };
        let upper = word.to_ascii_uppercase();
        match upper.as_str() {
            "LIKE" => Ok(Op::Like),
            "ILIKE" => Ok(Op::ILike),
            "IN" => Ok(Op::In),
            "NOT" => {
                self.skip_ws();
                match self.word() {
                    Some(w) if w.eq_ignore_ascii_case("IN") => Ok(Op::NotIn),
                    other => Err(self.err_at(
                        start,
                        &format!("invalid comparator 'NOT {}'", other.unwrap_or_default()),
                    )),
                }
            }
            "IS" => {
                self.skip_ws();
                let w = self.word().map(str::to_ascii_uppercase);
                match w.as_deref() {
                    Some("NULL") => Ok(Op::IsNull),
                    Some("NOT") => {
                        self.skip_ws();
                        match self.word() {
                            Some(n) if n.eq_ignore_ascii_case("NULL") => Ok(Op::IsNotNull),
                            _ => Err(self.err_at(start, "expected IS NOT NULL")),
                        }
                    }
                    _ => Err(self.err_at(start, "expected IS NULL or IS NOT NULL")),
                }
            }
            _ => Err(self.err_at(start, &format!("invalid comparator '{word}'"))),
        }
    }

    fn value(&mut self, ident: &Ident, op: Op) -> Result<Literal, SearchError> {
        if matches!(op, Op::IsNull | Op::IsNotNull) {
            return Ok(Literal::Nothing);
        }
        self.skip_ws();
        let is_list_op = matches!(op, Op::In | Op::NotIn);
        if is_list_op != (self.peek() == Some('(')) {
            return Err(if is_list_op {
                self.err(&format!(
                    "{} requires a parenthesised list of quoted strings, e.g. ('a', 'b'), \
                     found '{}'",
                    op.as_str(),
                    self.snippet()
                ))
            } else {
                self.err("a parenthesised list is only allowed after IN or NOT IN")
            });
        }
        let digit_at = |n: usize| self.peek_nth(n).is_some_and(|c| c.is_ascii_digit());
        match self.peek() {
            Some('\'' | '"') => Ok(Literal::Str(self.quoted()?)),
            Some('(') => self.list(),
            Some(c) if c.is_ascii_digit() => self.number(),
            Some('-') if digit_at(1) || (self.peek_nth(1) == Some('.') && digit_at(2)) => {
                self.number()
            }
            Some('.') if digit_at(1) => self.number(),
            Some(c) if is_word_start(c) => Ok(Literal::Bare(self.take_while(is_word_char).into())),
            _ => Err(self.err(&format!(
                "expected a value after '{} {}', found '{}'",
                ident.text,
                op.as_str(),
                self.snippet()
            ))),
        }
    }

    fn list(&mut self) -> Result<Literal, SearchError> {
        self.bump(); // '('
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some('\'' | '"') => items.push(self.quoted()?),
                Some(')') if items.is_empty() => {
                    return Err(self.err("expected a non-empty list of quoted strings"))
                }
                _ => {
                    return Err(self.err(&format!(
                        "expected a quoted string in the list, found '{}'",
                        self.snippet()
                    )))
                }
            }
            self.skip_ws();
            match self.bump() {
                Some(',') => {}
                Some(')') => return Ok(Literal::List(items)),
                _ => {
                    return Err(self.err("expected ',' or ')' in the list"));
                }
            }
        }
    }

    fn number(&mut self) -> Result<Literal, SearchError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.bump();
        }
        self.take_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') {
            self.bump();
            self.take_while(|c| c.is_ascii_digit());
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek_nth(1), Some('+' | '-')));
            if self.peek_nth(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                for _ in 0..=sign {
                    self.bump();
                }
                self.take_while(|c| c.is_ascii_digit());
            }
        }
        if self
            .peek()
            .is_some_and(|c| is_key_char(c) || c == '\'' || c == '"')
        {
            let end = self.pos;
            self.take_while(|c| !c.is_whitespace());
            let bad = &self.src[start..self.pos];
            self.pos = end;
            return Err(self.err_at(start, &format!("invalid number '{bad}'")));
        }
        let text = &self.src[start..self.pos];
        let value = text
            .parse::<f64>()
            .map_err(|_| self.err_at(start, &format!("invalid number '{text}'")))?;
        Ok(Literal::Num {
            text: text.to_string(),
            value,
        })
    }
}
