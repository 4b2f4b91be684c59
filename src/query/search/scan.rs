//! The scanner under the search parser: characters, words, quoted strings, whitespace, and
//! errors that point at a character of the source.

use super::{shorten, SearchError};

#[derive(Clone, Copy)]
pub(super) enum Ctx {
    Filter,
    OrderBy,
}

pub(super) struct Scanner<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    pub(super) ctx: Ctx,
}

pub(super) fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub(super) fn is_key_char(c: char) -> bool {
    is_word_char(c) || c == '.'
}

impl<'a> Scanner<'a> {
    pub(super) fn new(src: &'a str, ctx: Ctx) -> Self {
        Scanner { src, pos: 0, ctx }
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn peek_nth(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(super) fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    pub(super) fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    /// A maximal `[letter_][letter digit _]*` run, or `None` (nothing consumed).
    pub(super) fn word(&mut self) -> Option<&'a str> {
        if self.peek().is_some_and(is_word_start) {
            Some(self.take_while(is_word_char))
        } else {
            None
        }
    }

    /// What follows the cursor, shortened, for messages.
    pub(super) fn snippet(&self) -> String {
        let rest = self.rest();
        if rest.is_empty() {
            "end of input".to_string()
        } else {
            shorten(rest, 20)
        }
    }

    pub(super) fn err(&self, detail: &str) -> SearchError {
        self.err_at(self.pos, detail)
    }

    pub(super) fn err_at(&self, pos: usize, detail: &str) -> SearchError {
        let col = self.src[..pos].chars().count() + 1;
        match self.ctx {
            Ctx::Filter => SearchError::InvalidFilter(format!(
                "Invalid filter '{}': {detail} (at character {col})",
                self.src
            )),
            Ctx::OrderBy => SearchError::InvalidOrderBy(format!(
                "Invalid order_by clause '{}': {detail} (at character {col})",
                self.src
            )),
        }
    }

    /// A string quoted with the character under the cursor; a doubled quote is one quote.
    pub(super) fn quoted(&mut self) -> Result<String, SearchError> {
        let start = self.pos;
        let Some(q) = self.bump() else {
            return Err(self.err("expected a quoted string"));
        };
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(self.err_at(start, &format!("unterminated {q}-quoted string")));
                }
                Some(c) if c == q => {
                    if self.peek() == Some(q) {
                        self.bump();
                        out.push(q);
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }
}
