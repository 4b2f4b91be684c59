//! The filter and order-by parser.

use super::*;

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_and_blank_filters_have_no_clauses() {
    assert!(clauses("").is_empty());
    assert!(clauses("   \t\n ").is_empty());
}

#[test]
fn parses_every_symbolic_operator() {
    for (text, op) in [
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
    ] {
        let c = one(&format!("metrics.acc {text} 0.5"));
        assert_eq!(c.op, op, "{text}");
        assert_eq!(c.ident.prefix.as_deref(), Some("metrics"));
        assert_eq!(c.ident.key, "acc");
        assert_eq!(num(&c), 0.5);
        // No whitespace at all.
        assert_eq!(
            one(&format!("metrics.acc{text}0.5")).op,
            op,
            "{text} unspaced"
        );
    }
}

#[test]
fn parses_keyword_operators_case_insensitively() {
    for (text, op) in [
        ("LIKE", Op::Like),
        ("like", Op::Like),
        ("Like", Op::Like),
        ("ILIKE", Op::ILike),
        ("ilike", Op::ILike),
        ("iLiKe", Op::ILike),
    ] {
        let c = one(&format!("params.model {text} 'a%'"));
        assert_eq!((c.op, c.value), (op, s("a%")), "{text}");
    }
    for (text, op) in [
        ("IN", Op::In),
        ("in", Op::In),
        ("NOT IN", Op::NotIn),
        ("not  in", Op::NotIn),
        ("Not In", Op::NotIn),
    ] {
        let c = one(&format!("run_id {text} ('a', \"b\")"));
        assert_eq!(c.op, op, "{text}");
        assert_eq!(c.value, Literal::List(vec!["a".into(), "b".into()]));
    }
    for (text, op) in [
        ("IS NULL", Op::IsNull),
        ("is null", Op::IsNull),
        ("IS NOT NULL", Op::IsNotNull),
        ("is  Not\tnull", Op::IsNotNull),
    ] {
        let c = one(&format!("tags.x {text}"));
        assert_eq!((c.op, c.value), (op, Literal::Nothing), "{text}");
    }
}

#[test]
fn and_is_case_insensitive_and_whitespace_tolerant() {
    let c =
        clauses("metrics.a > 1 and params.b = 'x' AnD tags.c != \"y\"\n\tAND  status = 'RUNNING'");
    assert_eq!(c.len(), 4);
    assert_eq!(c[1].ident.prefix.as_deref(), Some("params"));
    assert_eq!(c[2].value, s("y"));
    assert_eq!(c[3].ident.prefix, None);
    assert_eq!(c[3].ident.key, "status");
    assert_eq!(c[3].text, "status = 'RUNNING'");
    // AND directly after a quoted value.
    assert_eq!(clauses("params.a='x'AND params.b='y'").len(), 2);
    // Leading and trailing whitespace.
    assert_eq!(clauses("  metrics.a > 1  ").len(), 1);
}

#[test]
fn key_quoting_styles() {
    let c = one("tags.`mlflow.runName` = 'r'");
    assert_eq!(
        (c.ident.prefix.as_deref(), c.ident.key.as_str()),
        (Some("tags"), "mlflow.runName")
    );
    let c = one("metrics.\"my metric\" > 1");
    assert_eq!(c.ident.key, "my metric");
    let c = one("params.'lr/x:y-z' = '1'");
    assert_eq!(c.ident.key, "lr/x:y-z");
    let c = one("`metrics`.`a b` < 2");
    assert_eq!(
        (c.ident.prefix.as_deref(), c.ident.key.as_str()),
        (Some("metrics"), "a b")
    );
    let c = one("tags.`a``b` = 'x'");
    assert_eq!(c.ident.key, "a`b");
    // `and`/`or` are fine as keys and entity-like words only when followed by a dot.
    assert_eq!(one("params.and = 'x'").ident.key, "and");
    let c = one("\"run name\" = 'x'");
    assert_eq!((c.ident.prefix, c.ident.key.as_str()), (None, "run name"));
}

#[test]
fn unquoted_keys_may_contain_dots_digits_and_unicode() {
    let c = one("params.model.lr = '0.1'");
    assert_eq!(
        (c.ident.prefix.as_deref(), c.ident.key.as_str()),
        (Some("params"), "model.lr")
    );
    assert_eq!(one("tags.mlflow.runName = 'x'").ident.key, "mlflow.runName");
    assert_eq!(one("metrics.1st_epoch > 1").ident.key, "1st_epoch");
    assert_eq!(one("metrics.précision > 1").ident.key, "précision");
}

#[test]
fn string_literals() {
    assert_eq!(one("params.a = 'it''s'").value, s("it's"));
    assert_eq!(one("params.a = \"say \"\"hi\"\"\"").value, s("say \"hi\""));
    assert_eq!(one("params.a = \"it's\"").value, s("it's"));
    assert_eq!(one("params.a = ''").value, s(""));
    assert_eq!(one("params.a = 'a\\b'").value, s("a\\b"));
    assert_eq!(one("params.a = 'x AND y OR z'").value, s("x AND y OR z"));
    assert_eq!(one("params.a = 'ünï ✓'").value, s("ünï ✓"));
}

#[test]
fn numeric_literals() {
    for (text, value) in [
        ("1", 1.0),
        ("-1", -1.0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("2.5e+2", 250.0),
        ("123456789012", 123_456_789_012.0),
    ] {
        let c = one(&format!("metrics.m = {text}"));
        assert_eq!(num(&c), value, "{text}");
        match &c.value {
            Literal::Num { text: t, .. } => assert_eq!(t, text),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(one("metrics.m = abc").value, Literal::Bare("abc".into()));
}

#[test]
fn parse_errors_name_the_offending_part() {
    for (filter, needle) in [
        ("metrics.a > 1 OR metrics.b > 1", "'OR' is not supported"),
        ("metrics.a > 1 or metrics.b > 1", "'OR' is not supported"),
        ("(metrics.a > 1)", "parentheses are not supported"),
        (
            "metrics.a > 1 AND (metrics.b > 1)",
            "parentheses are not supported",
        ),
        ("metrics.a > 1 AND", "ends with AND"),
        ("metrics.a > 1 AND  ", "ends with AND"),
        (
            "AND metrics.a > 1",
            "unexpected 'AND' where a clause was expected",
        ),
        (
            "metrics.a > 1 AND and metrics.b > 1",
            "unexpected 'and' where a clause",
        ),
        ("metrics.a > 1 AND OR", "unexpected 'OR' where a clause"),
        ("'status' = 'x'", "expected an identifier"),
        ("metrics.a > 1 metrics.b > 2", "unexpected 'metrics.b > 2'"),
        ("metrics.a > 1;", "unexpected ';'"),
        (
            "metrics.a > 1 ANDmetrics.b > 2",
            "unexpected 'ANDmetrics.b > 2'",
        ),
        ("params.a = 'x", "unterminated '-quoted string"),
        ("params.\"a = 'x'", "unterminated \"-quoted string"),
        (
            "metrics.a >",
            "expected a value after 'metrics.a >', found 'end of input'",
        ),
        (
            "metrics.a",
            "expected a comparison operator after 'metrics.a'",
        ),
        (
            "metrics.a-b > 1",
            "expected a comparison operator after 'metrics.a', found '-b > 1'",
        ),
        ("metrics.a == 1", "invalid comparator '=='"),
        ("metrics.a <> 1", "invalid comparator '<>'"),
        ("params.a NOT LIKE 'x'", "invalid comparator 'NOT LIKE'"),
        ("params.a CONTAINS 'x'", "invalid comparator 'CONTAINS'"),
        ("tags.a IS 'x'", "expected IS NULL or IS NOT NULL"),
        ("tags.a IS NOT 'x'", "expected IS NOT NULL"),
        ("run_id IN ()", "non-empty list"),
        (
            "run_id IN ('a', 1)",
            "expected a quoted string in the list, found '1)'",
        ),
        ("run_id IN ('a' 'b')", "expected ',' or ')'"),
        ("run_id IN ('a',", "expected a quoted string in the list"),
        ("run_id IN 'a'", "IN requires a parenthesised list"),
        ("run_id NOT IN 'a'", "NOT IN requires a parenthesised list"),
        ("run_id = ('a')", "only allowed after IN or NOT IN"),
        ("metrics. > 1", "missing key after 'metrics.'"),
        ("tags.`` = 'x'", "empty key"),
        ("1 = 1", "expected an identifier"),
        ("= 'x'", "expected an identifier"),
        ("metrics.a > 1abc", "invalid number '1abc'"),
        ("metrics.a > 1.2.3", "invalid number '1.2.3'"),
        ("metrics.a > -", "expected a value"),
        ("params.a = 'x' 'y'", "unexpected ''y''"),
    ] {
        assert_filter_error(filter, needle);
    }
}

#[test]
fn parse_errors_report_position_and_filter() {
    let m = filter_error("metrics.a > 1 OR b");
    assert!(
        m.starts_with("Invalid filter 'metrics.a > 1 OR b': "),
        "{m}"
    );
    assert!(m.ends_with("(at character 15)"), "{m}");
}

#[test]
fn order_by_entries_parse() {
    let (i, asc) = parse_order_by("metrics.acc").unwrap();
    assert_eq!(
        (i.prefix.as_deref(), i.key.as_str(), asc),
        (Some("metrics"), "acc", true)
    );
    for (entry, expected) in [
        ("metrics.acc DESC", false),
        ("metrics.acc desc", false),
        ("metrics.acc Desc", false),
        ("metrics.acc ASC", true),
        ("metrics.acc asc", true),
        ("  metrics.acc   DESC  ", false),
    ] {
        assert_eq!(parse_order_by(entry).unwrap().1, expected, "{entry}");
    }
    let (i, asc) = parse_order_by("metrics.`my metric` DESC").unwrap();
    assert_eq!((i.key.as_str(), asc), ("my metric", false));
    let (i, _) = parse_order_by("params.\"a.b\"").unwrap();
    assert_eq!(i.key, "a.b");
    let (i, _) = parse_order_by("start_time").unwrap();
    assert_eq!((i.prefix, i.key.as_str()), (None, "start_time"));
}
