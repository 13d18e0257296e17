//! Cloud-config templating, deliberately tiny: `[[ .a.b ]]` (the reference
//! documentation's delimiters) and `[[[ .a.b ]]]` (current upstream's) are
//! replaced by the `--set` value at that path. Nothing else is touched, so
//! bash tests (`[[ -f /x ]]`), Kairos' own `{{ ... }}` templates and
//! comments stay byte-for-byte. A full template engine would have to escape
//! all of those; this is why it is hand-written.

use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

const PATH: &str = r"\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*";

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\[\[\[[ \t]*({PATH})[ \t]*\]\]\]|\[\[[ \t]*({PATH})[ \t]*\]\]"
    ))
    .expect("valid regex")
});

/// A rendered cloud-config and the placeholders that had no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Paths (e.g. `.github.user`) that rendered empty.
    pub missing: Vec<String>,
}

/// Replaces placeholders with values from `data` (the nested `--set` map).
pub fn render(text: &str, data: &Value) -> Rendered {
    let mut missing = Vec::new();
    let out = PLACEHOLDER.replace_all(text, |caps: &regex::Captures<'_>| {
        let path = caps
            .get(1)
            .or_else(|| caps.get(2))
            .map(|m| m.as_str())
            .unwrap_or_default();
        match lookup(data, path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                if !missing.iter().any(|m| m == path) {
                    missing.push(path.to_string());
                }
                String::new()
            }
        }
    });
    Rendered {
        text: out.into_owned(),
        missing,
    }
}

fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(data, |v, seg| v.as_object()?.get(seg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({"github": {"user": "mudler"}, "kairos": {"password": "s3cr=t,x"}, "n": 3, "b": true,
               "iso": {"extend-live-cmdline": "quiet"}})
    }

    #[test]
    fn both_delimiters_render() {
        let r = render(
            "users: [[ .github.user ]] / [[.kairos.password]] / [[[ .github.user ]]] / [[[.n]]] [[ .b ]]",
            &data(),
        );
        assert_eq!(r.text, "users: mudler / s3cr=t,x / mudler / 3 true");
        assert!(r.missing.is_empty());
        assert_eq!(
            render("[[ .iso.extend-live-cmdline ]]", &data()).text,
            "quiet"
        );
    }

    #[test]
    fn missing_keys_render_empty_and_are_reported_once() {
        let r = render("a=[[ .nope.x ]] b=[[[ .nope.x ]]] c=[[ .github ]]", &data());
        assert_eq!(r.text, "a= b= c=");
        assert_eq!(r.missing, vec![".nope.x", ".github"]);
    }

    #[test]
    fn everything_else_is_left_byte_for_byte() {
        let text = "#cloud-config\n\
            # comment [[ not a template ]]\n\
            hostname: kairos-{{ trunc 4 .MachineID }}\n\
            stages:\n  boot:\n    - commands:\n\
            \x20       - if [[ -f /x ]]; then echo ok; fi\n\
            \x20       - '[[ $a == \"b\" ]] && [[ -n \"$HOME\" ]] || [[ ! -d /y ]]'\n\
            \x20       - echo \"${ARR[[0]]}\" [[]] [[[ ]]] [[ . ]] [[ .. ]] [[ .a. ]] [[.a b]]\n\
            \x20       - 'weird [[[ .github.user ]] and [[ .github.user ]]]'\n\
            \x20 unicode: \"ünïcödé ✓\"\r\n";
        let r = render(text, &data());
        let expected = text
            .replace("[[[ .github.user ]]", "[mudler")
            .replace("[[ .github.user ]]]", "mudler]");
        assert_eq!(r.text, expected);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for text in [
            "[[",
            "]]",
            "[[[",
            "[[ .",
            "[[ .a",
            "[[[ .a ]]",
            "\0[[ .n ]]\0",
            &"[[".repeat(10_000),
        ] {
            let _ = render(text, &data());
        }
        assert_eq!(render("\0[[ .n ]]\0", &data()).text, "\u{0}3\u{0}");
    }
}
