//! A reader for git's config syntax, as far as `git fsck` reads a `.gitmodules` blob: sections
//! (`[submodule "name"]`, `[a.b]`), keys, values with quotes, escapes, comments and line
//! continuations. It yields `(section.subsection.key, value)` pairs like `git config --list`;
//! where git's reader fails, this one fails too (so nothing git would check is skipped).

/// `(variable, value)`: the variable lowercased except for the subsection; `None` for a key
/// without `=` (a boolean true).
pub type Entry = (String, Option<String>);

struct Source<'a> {
    bytes: &'a [u8],
    pos: usize,
    eof: bool,
    line: usize,
}

impl Source<'_> {
    /// The next byte; `\r\n` reads as `\n`, the end reads as `\n` with `eof` set.
    fn next(&mut self) -> u8 {
        let Some(&c) = self.bytes.get(self.pos) else {
            self.eof = true;
            return b'\n';
        };
        self.pos += 1;
        if c == b'\r' && self.bytes.get(self.pos) == Some(&b'\n') {
            self.pos += 1;
            self.line += 1;
            return b'\n';
        }
        if c == b'\n' {
            self.line += 1;
        }
        c
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Parses config text; Err names the line git would stop at.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let bytes = text.strip_prefix('\u{feff}').unwrap_or(text).as_bytes();
    let mut src = Source {
        bytes,
        pos: 0,
        eof: false,
        line: 1,
    };
    let mut out = Vec::new();
    let mut section: Vec<u8> = Vec::new();
    let mut comment = false;
    let fail = |src: &Source, what: &str| Err(format!("{what} on line {}", src.line));
    loop {
        let c = src.next();
        if c == b'\n' {
            if src.eof {
                return Ok(out);
            }
            comment = false;
            continue;
        }
        if comment || is_space(c) {
            continue;
        }
        if c == b'#' || c == b';' {
            comment = true;
            continue;
        }
        if c == b'[' {
            section.clear();
            if !read_section(&mut src, &mut section) || section.is_empty() {
                return fail(&src, "a bad section header");
            }
            section.push(b'.');
            continue;
        }
        if !c.is_ascii_alphabetic() {
            return fail(&src, "a line that is neither a section, a key nor a comment");
        }
        let mut name = section.clone();
        name.push(c.to_ascii_lowercase());
        let mut c;
        loop {
            c = src.next();
            if src.eof || !is_key_char(c) {
                break;
            }
            name.push(c.to_ascii_lowercase());
        }
        while c == b' ' || c == b'\t' {
            c = src.next();
        }
        let value = if c == b'\n' {
            None
        } else if c != b'=' {
            return fail(&src, "a key without `=`");
        } else {
            match read_value(&mut src) {
                Some(v) => Some(String::from_utf8_lossy(&v).into_owned()),
                None => return fail(&src, "a bad value"),
            }
        };
        out.push((String::from_utf8_lossy(&name).into_owned(), value));
        if src.eof {
            return Ok(out);
        }
    }
}

/// After `[`: `name]`, `name.sub]` or `name "sub"]`.
fn read_section(src: &mut Source, name: &mut Vec<u8>) -> bool {
    loop {
        let c = src.next();
        if src.eof {
            return false;
        }
        if c == b']' {
            return true;
        }
        if is_space(c) {
            return read_subsection(src, name, c);
        }
        if !is_key_char(c) && c != b'.' {
            return false;
        }
        name.push(c.to_ascii_lowercase());
    }
}

fn read_subsection(src: &mut Source, name: &mut Vec<u8>, mut c: u8) -> bool {
    loop {
        if c == b'\n' {
            return false;
        }
        c = src.next();
        if !is_space(c) {
            break;
        }
    }
    if c != b'"' {
        return false;
    }
    name.push(b'.');
    loop {
        let mut c = src.next();
        if c == b'\n' {
            return false;
        }
        if c == b'"' {
            break;
        }
        if c == b'\\' {
            c = src.next();
            if c == b'\n' {
                return false;
            }
        }
        name.push(c);
    }
    src.next() == b']'
}

/// After `=`: the value up to the end of the line (quotes, escapes, `\` continuations; inner
/// runs of spaces kept, leading and trailing ones dropped, comments cut).
fn read_value(src: &mut Source) -> Option<Vec<u8>> {
    let mut value = Vec::new();
    let mut quote = false;
    let mut comment = false;
    let mut spaces = 0;
    loop {
        let c = src.next();
        if c == b'\n' {
            return if quote { None } else { Some(value) };
        }
        if comment {
            continue;
        }
        if is_space(c) && !quote {
            if !value.is_empty() {
                spaces += 1;
            }
            continue;
        }
        if !quote && (c == b';' || c == b'#') {
            comment = true;
            continue;
        }
        value.extend(std::iter::repeat_n(b' ', spaces));
        spaces = 0;
        if c == b'\\' {
            let escaped = match src.next() {
                b'\n' => continue,
                b't' => b'\t',
                b'b' => 8,
                b'n' => b'\n',
                b'\\' => b'\\',
                b'"' => b'"',
                _ => return None,
            };
            value.push(escaped);
            continue;
        }
        if c == b'"' {
            quote = !quote;
            continue;
        }
        value.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, Option<String>)> {
        parse(text).unwrap()
    }

    #[test]
    fn reads_what_git_reads() {
        let text = "\u{feff}# c\n[Submodule \"Lib/X\"]\n\tPath = lib # comment\n\turl = \"a;b\" c\\\n d\n\tactive\n[a.B] k=v\r\n[x] y = \"q\\\"\\t\\\\\"";
        assert_eq!(
            entries(text),
            [
                ("submodule.Lib/X.path".into(), Some("lib".into())),
                ("submodule.Lib/X.url".into(), Some("a;b c d".into())),
                ("submodule.Lib/X.active".into(), None),
                ("a.b.k".into(), Some("v".into())),
                ("x.y".into(), Some("q\"\t\\".into())),
            ]
        );
        assert_eq!(entries("[s] k =  a   b  \n")[0].1.as_deref(), Some("a   b"));
        assert_eq!(entries("[s \"a\\\"b\"] k"), [("s.a\"b.k".to_string(), None)]);
        for bad in [
            "[s",
            "[s \"a]",
            "[s \"a\"",
            "[s] k v",
            "[s] k = \"open",
            "[s] k = \\x",
            "[] k",
            "1k = v",
            "[s \"a\nb\"]",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
