//! The `when` / `allowfailure` expression language.
//!
//! Grammar (after `${...}` rendering):
//!
//! ```text
//! expr    := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := ( "!" | "not" ) unary | primary
//! primary := "(" expr ")"
//!          | FUNC "(" operand "," operand ")"     startwith endwith contains
//!          | operand ( OP operand )?              == != = < > <= >=
//! operand := "quoted" | 'quoted' | bare words joined by single spaces
//! ```
//!
//! A lone operand is a boolean: `true`/`1`/`yes`, or `false`/`0`/`no`/empty
//! (any case); anything else is an error rather than a guess. `==` and `!=`
//! compare numbers numerically and text case-insensitively, as the anchor
//! does; `<`, `>`, `<=`, `>=` need numbers. The `startwith`, `endwith` and
//! `contains` functions (also spelt `startswith`, `endswith`) are
//! case-sensitive.

use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` (or `=`).
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `>`.
    Gt,
    /// `<=`.
    Le,
    /// `>=`.
    Ge,
}

/// A two-argument function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `startwith(a, b)`: `a` starts with `b`.
    StartWith,
    /// `endwith(a, b)`: `a` ends with `b`.
    EndWith,
    /// `contains(a, b)`: `a` contains `b`.
    Contains,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A value read as a boolean.
    Value(String),
    /// Negation.
    Not(Box<Expr>),
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// A comparison.
    Cmp(CmpOp, String, String),
    /// A function call.
    Func(Func, String, String),
}

/// An expression that does not parse or evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expression `{expr}`: {message}{}", column.map(|c| format!(" (column {c})")).unwrap_or_default())]
pub struct ExprError {
    /// The expression text.
    pub expr: String,
    /// 1-based character column, when the problem has a place.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Not,
    And,
    Or,
    Op(CmpOp),
    Str(String),
    Word(String),
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl Lexer<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            expr: self.src.to_owned(),
            column: Some(self.src[..at.min(self.src.len())].chars().count() + 1),
            message: message.into(),
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|&(_, c)| c)
    }

    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, ExprError> {
        let mut out = Vec::new();
        while let Some(&(at, c)) = self.chars.get(self.i) {
            let two = (c, self.peek(1));
            let tok = match two {
                (c, _) if c.is_whitespace() => {
                    self.i += 1;
                    continue;
                }
                ('(', _) => Tok::LParen,
                (')', _) => Tok::RParen,
                (',', _) => Tok::Comma,
                ('&', Some('&')) => Tok::And,
                ('|', Some('|')) => Tok::Or,
                ('=', Some('=')) => Tok::Op(CmpOp::Eq),
                ('!', Some('=')) => Tok::Op(CmpOp::Ne),
                ('<', Some('=')) => Tok::Op(CmpOp::Le),
                ('>', Some('=')) => Tok::Op(CmpOp::Ge),
                ('=', _) => Tok::Op(CmpOp::Eq),
                ('<', _) => Tok::Op(CmpOp::Lt),
                ('>', _) => Tok::Op(CmpOp::Gt),
                ('!', _) => Tok::Not,
                ('"' | '\'', _) => {
                    let quote = c;
                    let mut s = String::new();
                    self.i += 1;
                    loop {
                        match self.peek(0) {
                            None => return Err(self.err(at, "unterminated quoted string")),
                            Some('\\') if matches!(self.peek(1), Some(q) if q == quote || q == '\\') =>
                            {
                                if let Some(q) = self.peek(1) {
                                    s.push(q);
                                }
                                self.i += 2;
                            }
                            Some(ch) if ch == quote => break,
                            Some(ch) => {
                                s.push(ch);
                                self.i += 1;
                            }
                        }
                    }
                    self.i += 1;
                    out.push((at, Tok::Str(s)));
                    continue;
                }
                _ => {
                    let mut s = String::new();
                    while let Some(ch) = self.peek(0) {
                        let stop = ch.is_whitespace()
                            || "(),\"'=<>".contains(ch)
                            || (ch == '!' && self.peek(1) == Some('='))
                            || (ch == '&' && self.peek(1) == Some('&'))
                            || (ch == '|' && self.peek(1) == Some('|'));
                        if stop {
                            break;
                        }
                        s.push(ch);
                        self.i += 1;
                    }
                    out.push((at, Tok::Word(s)));
                    continue;
                }
            };
            let width = match tok {
                Tok::And | Tok::Or | Tok::Op(CmpOp::Le | CmpOp::Ge | CmpOp::Ne) => 2,
                Tok::Op(CmpOp::Eq) if self.peek(1) == Some('=') => 2,
                _ => 1,
            };
            self.i += width;
            out.push((at, tok));
        }
        Ok(out)
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    i: usize,
    /// How deep in `(` and `!` the parser is now.
    depth: usize,
}

/// The deepest nesting of `(`, `!` and `not` an expression may have: the
/// parser, the evaluator and dropping the tree all recurse that deep.
pub const MAX_EXPR_DEPTH: usize = 64;
/// The longest expression accepted.
pub const MAX_EXPR_LEN: usize = 16 * 1024;

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> ExprError {
        let at = self.toks.get(self.i).map_or(self.src.len(), |(a, _)| *a);
        ExprError {
            expr: self.src.to_owned(),
            column: Some(self.src[..at].chars().count() + 1),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(_, t)| t)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.i + k).map(|(_, t)| t)
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() == Some(want) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected {what}")))
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.i += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.i += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn deeper(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err(self.err(format!(
                "nested deeper than {MAX_EXPR_DEPTH} levels of `(` and `!`"
            )));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Tok::Not) {
            self.i += 1;
            self.deeper()?;
            let e = Expr::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        let is_not_word =
            matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not"));
        let operand_follows = matches!(
            self.peek_at(1),
            Some(Tok::Word(_) | Tok::Str(_) | Tok::LParen | Tok::Not)
        );
        if is_not_word && operand_follows {
            self.i += 1;
            self.deeper()?;
            let e = Expr::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.primary()
    }

    fn func_name(word: &str) -> Option<Func> {
        match word.to_ascii_lowercase().as_str() {
            "startwith" | "startswith" => Some(Func::StartWith),
            "endwith" | "endswith" => Some(Func::EndWith),
            "contains" => Some(Func::Contains),
            _ => None,
        }
    }

    fn operand(&mut self) -> Result<String, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.i += 1;
                Ok(s)
            }
            Some(Tok::Word(w)) => {
                self.i += 1;
                let mut words = vec![w];
                while let Some(Tok::Word(next)) = self.peek().cloned() {
                    words.push(next);
                    self.i += 1;
                }
                Ok(words.join(" "))
            }
            _ => Err(self.err("expected a value")),
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Tok::LParen) {
            self.i += 1;
            self.deeper()?;
            let e = self.or()?;
            self.expect(&Tok::RParen, "`)`")?;
            self.depth -= 1;
            return Ok(e);
        }
        if let (Some(Tok::Word(w)), Some(Tok::LParen)) = (self.peek(), self.peek_at(1)) {
            let Some(func) = Self::func_name(w) else {
                return Err(self.err(format!(
                    "unknown function `{w}`; expected startwith, endwith or contains"
                )));
            };
            self.i += 2;
            let a = self.operand()?;
            self.expect(&Tok::Comma, "`,` between the two arguments")?;
            let b = self.operand()?;
            self.expect(&Tok::RParen, "`)` after the second argument")?;
            return Ok(Expr::Func(func, a, b));
        }
        let left = self.operand()?;
        if let Some(Tok::Op(op)) = self.peek().cloned() {
            self.i += 1;
            let right = self.operand()?;
            return Ok(Expr::Cmp(op, left, right));
        }
        Ok(Expr::Value(left))
    }
}

/// Parses an expression.
pub fn parse_expr(src: &str) -> Result<Expr, ExprError> {
    if src.len() > MAX_EXPR_LEN {
        return Err(ExprError {
            expr: src.chars().take(80).collect::<String>() + "...",
            column: None,
            message: format!("longer than {MAX_EXPR_LEN} bytes"),
        });
    }
    let toks = Lexer {
        src,
        chars: src.char_indices().collect(),
        i: 0,
    }
    .tokens()?;
    if toks.is_empty() {
        return Err(ExprError {
            expr: src.to_owned(),
            column: None,
            message: "empty expression".into(),
        });
    }
    let mut p = Parser {
        src,
        toks,
        i: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.i < p.toks.len() {
        return Err(p.err("unexpected text after a complete expression (missing `&&` or `||`?)"));
    }
    Ok(e)
}

fn truth(src: &str, v: &str) -> Result<bool, ExprError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        other => Err(ExprError {
            expr: src.to_owned(),
            column: None,
            message: format!("`{other}` is not a boolean (use true/false/1/0, or a comparison)"),
        }),
    }
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

impl Expr {
    /// Evaluates; `src` is used in error messages.
    pub fn eval(&self, src: &str) -> Result<bool, ExprError> {
        Ok(match self {
            Expr::Value(v) => truth(src, v)?,
            Expr::Not(e) => !e.eval(src)?,
            Expr::And(a, b) => a.eval(src)? && b.eval(src)?,
            Expr::Or(a, b) => a.eval(src)? || b.eval(src)?,
            Expr::Func(f, a, b) => match f {
                Func::StartWith => a.starts_with(b.as_str()),
                Func::EndWith => a.ends_with(b.as_str()),
                Func::Contains => a.contains(b.as_str()),
            },
            Expr::Cmp(op, a, b) => match (op, number(a), number(b)) {
                (CmpOp::Eq, Some(x), Some(y)) => x == y,
                (CmpOp::Ne, Some(x), Some(y)) => x != y,
                (CmpOp::Eq, _, _) => a.trim().to_lowercase() == b.trim().to_lowercase(),
                (CmpOp::Ne, _, _) => a.trim().to_lowercase() != b.trim().to_lowercase(),
                (op, Some(x), Some(y)) => match op {
                    CmpOp::Lt => x < y,
                    CmpOp::Gt => x > y,
                    CmpOp::Le => x <= y,
                    _ => x >= y,
                },
                (_, _, _) => {
                    return Err(ExprError {
                        expr: src.to_owned(),
                        column: None,
                        message: format!("cannot order `{a}` and `{b}`: both must be numbers"),
                    });
                }
            },
        })
    }
}

impl fmt::Display for Expr {
    /// A canonical form that parses back to the same expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        match self {
            Expr::Value(v) => write!(f, "{}", q(v)),
            Expr::Not(e) => write!(f, "!({e})"),
            Expr::And(a, b) => write!(f, "({a} && {b})"),
            Expr::Or(a, b) => write!(f, "({a} || {b})"),
            Expr::Cmp(op, a, b) => {
                let o = match op {
                    CmpOp::Eq => "==",
                    CmpOp::Ne => "!=",
                    CmpOp::Lt => "<",
                    CmpOp::Gt => ">",
                    CmpOp::Le => "<=",
                    CmpOp::Ge => ">=",
                };
                write!(f, "{} {o} {}", q(a), q(b))
            }
            Expr::Func(func, a, b) => {
                let name = match func {
                    Func::StartWith => "startwith",
                    Func::EndWith => "endwith",
                    Func::Contains => "contains",
                };
                write!(f, "{name}({}, {})", q(a), q(b))
            }
        }
    }
}

/// Parses and evaluates an already rendered condition.
pub fn eval_condition(src: &str) -> Result<bool, ExprError> {
    parse_expr(src)?.eval(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn anchor_forms_and_ours() {
        for (src, want) in [
            ("true", true),
            ("TRUE", true),
            ("false", false),
            ("1", true),
            ("0", false),
            ("!true", false),
            ("not true", false),
            ("not false && true", true),
            ("all == \"all\"", true),
            ("all==\"all\"", true),
            ("ALL == all", true),
            ("kube-system != \"all\"", true),
            ("kube-system!=\"all\"", true),
            ("\"false\" == \"false\"", true),
            ("10 > 9", true),
            ("10 < 9", false),
            ("10 >= 10", true),
            ("9.5 <= 9", false),
            ("1.0 == 1", true),
            ("startwith(nginx-1, nginx)", true),
            ("endwith(\"app.log\", \".log\")", true),
            ("startswith(a, b)", false),
            ("contains(\"hello world\", \"o w\")", true),
            ("true && false || true", true),
            ("true && (false || false)", false),
            ("!(1 == 2) && 3 > 2", true),
            ("kube system == \"kube system\"", true),
            ("'single' == single", true),
            ("", false),
        ] {
            if src.is_empty() {
                assert!(eval_condition(src).is_err());
                continue;
            }
            assert_eq!(eval_condition(src), Ok(want), "{src}");
        }
    }

    #[test]
    fn errors_are_clear() {
        for (src, needle) in [
            ("true &&", "expected a value"),
            ("(true", "expected `)`"),
            ("a < b", "both must be numbers"),
            ("maybe", "not a boolean"),
            ("\"open", "unterminated"),
            ("frob(a, b)", "unknown function `frob`"),
            ("startwith(a b)", "expected `,`"),
            ("true false", "not a boolean"),
            ("true) ", "unexpected text"),
        ] {
            let e = eval_condition(src).unwrap_err().to_string();
            assert!(e.contains(needle), "{src}: {e}");
            assert!(e.contains(src.trim_end()), "names the expression: {e}");
        }
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("true".to_string()),
            Just("false".to_string()),
            Just("1".to_string()),
            Just("0".to_string()),
            "[a-z]{1,6}",
            "-?[0-9]{1,3}(\\.[0-9])?",
            "[a-z]{1,4} [a-z]{1,4}",
        ]
    }

    fn boolean() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("true".to_string()),
            Just("false".to_string()),
            Just("1".into()),
            Just("0".into())
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        let num = "-?[0-9]{1,3}";
        let leaf = prop_oneof![
            boolean().prop_map(Expr::Value),
            (value(), value()).prop_map(|(a, b)| Expr::Cmp(CmpOp::Eq, a, b)),
            (value(), value()).prop_map(|(a, b)| Expr::Cmp(CmpOp::Ne, a, b)),
            (num, num).prop_map(|(a, b)| Expr::Cmp(CmpOp::Lt, a, b)),
            (num, num).prop_map(|(a, b)| Expr::Cmp(CmpOp::Ge, a, b)),
            (value(), value()).prop_map(|(a, b)| Expr::Func(Func::StartWith, a, b)),
            (value(), value()).prop_map(|(a, b)| Expr::Func(Func::Contains, a, b)),
        ];
        leaf.prop_recursive(4, 32, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in any::<String>()) {
            let _ = eval_condition(&s);
        }

        #[test]
        fn parser_never_panics_on_operator_soup(s in "[a-z0-9 ()!=<>&|,\"']{0,40}") {
            let _ = eval_condition(&s);
        }

        #[test]
        fn printed_expressions_parse_back_and_agree(e in expr()) {
            let src = e.to_string();
            let parsed = parse_expr(&src).map_err(|err| TestCaseError::fail(err.to_string()))?;
            prop_assert_eq!(&parsed, &e);
            prop_assert_eq!(parsed.eval(&src), e.eval(&src));
        }
    }
}
