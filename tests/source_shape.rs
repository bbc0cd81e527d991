//! The code's shape, as ARCHITECTURE.md promises it: in each crate of the workspace
//! (the engine, the element, the CLI) no file imports, directly or around a circle,
//! a file that imports it back, and no function is longer than 80 lines (the
//! element's declarative ParamSpec table excepted).
//!
//! A light reading of the source, not a compiler: imports are `use` items and
//! `crate::` / `super::` paths anywhere in a file, plus paths that start with a child
//! module's name; test modules (`#[cfg(test)]` and on) are left out, and neither a
//! parent's `mod` declarations nor its `pub use` re-exports (the façade lib.rs and a
//! folder's mod.rs give callers) are imports. The GObject wrapper in an element's `mod.rs`
//! names its `imp` subclass by a relative path inside a macro, which gstreamer-rs
//! requires: not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 80;
/// (file, function) allowed above `MAX_LINES`: a declarative table.
const LONG_ALLOWED: &[(&str, &str)] = &[("plugins/src/modnetmatte/settings.rs", "properties")];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of a file without its comments, strings and chars (each replaced by a
/// space, newlines kept), so that braces and paths can be read off it.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == b'r' && (next == Some(b'"') || next == Some(b'#')) && !ident_before(b, i) {
            // A raw string: r"..." or r#"..."#.
            let mut hashes = 0;
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            let end: Vec<u8> = std::iter::once(b'"').chain(vec![b'#'; hashes]).collect();
            while j < b.len() && !b[j..].starts_with(&end) {
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push(' ');
            i = j + end.len();
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if b.get(i) == Some(&b'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == b'\'' {
            // A char ('x', '\n', '\u{..}'), or a lifetime ('a), which stays.
            let close = if next == Some(b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
            };
            match close {
                Some(end) => {
                    out.push(' ');
                    i = end + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The code before the file's test module: test modules may reach anywhere.
fn without_tests(code: &str) -> &str {
    let mut at = 0;
    for line in code.split_inclusive('\n') {
        if line.trim_start().starts_with("#[cfg(test)]") {
            return &code[..at];
        }
        at += line.len();
    }
    code
}

/// A crate's modules: module path -> file, found from the root through `mod x;`.
fn modules(root_file: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut todo = vec![(Vec::new(), root_file.to_path_buf())];
    while let Some((path, file)) = todo.pop() {
        let src = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        // mod.rs, lib.rs and main.rs hold their children beside them; a.rs in a/.
        let children_dir = match name {
            "mod.rs" | "lib.rs" | "main.rs" => dir.clone(),
            _ if path.is_empty() => dir.clone(),
            _ => dir.join(name.trim_end_matches(".rs")),
        };
        let mut attr_path: Option<String> = None;
        for line in src.lines() {
            let t = line.trim();
            if let Some(p) = t
                .strip_prefix("#[path = \"")
                .and_then(|r| r.strip_suffix("\"]"))
            {
                attr_path = Some(p.to_string());
                continue;
            }
            let decl = t
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub(in super::super) ")
                .trim_start_matches("pub ");
            if let Some(m) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                let child = match attr_path.take() {
                    Some(p) => dir.join(p),
                    None => {
                        let flat = children_dir.join(format!("{m}.rs"));
                        if flat.exists() {
                            flat
                        } else {
                            children_dir.join(m).join("mod.rs")
                        }
                    }
                };
                let mut p = path.clone();
                p.push(m.to_string());
                todo.push((p, child));
            } else if !t.starts_with("#[") {
                attr_path = None;
            }
        }
        found.insert(path, file);
    }
    found
}

/// The module paths a file refers to: every path of its `use` items (relative ones
/// too), and `crate::` / `super::` paths anywhere else.
fn references(module: &[String], code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut refs = Vec::new();
    let mut rest = String::new();
    let mut item: Option<String> = None;
    for line in code.lines() {
        let t = line.trim_start();
        let re_export = ["pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .any(|p| t.starts_with(p));
        match (&mut item, t.strip_prefix("use ")) {
            (Some(acc), _) => acc.push_str(t),
            (None, Some(tree)) => item = Some(tree.to_string()),
            // A façade for callers (lib.rs, a folder's mod.rs), not a dependency.
            (None, None) if re_export => item = Some(String::new()),
            (None, None) => {
                rest.push_str(line);
                rest.push('\n');
                continue;
            }
        }
        if let Some(acc) = item.take_if(|a| a.contains(';')) {
            let tree = acc.split(';').next().unwrap_or_default();
            refs.extend(
                expand(tree)
                    .into_iter()
                    .filter_map(|p| resolve(module, &p, children, true)),
            );
        }
    }
    for w in rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        let segs: Vec<String> = w
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        refs.extend(resolve(module, &segs, children, false));
    }
    refs
}

/// A use tree (`a::{b, c::{d, e}}`) as the paths it names.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default();
        return vec![
            path.split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        ];
    };
    let prefix: Vec<String> = tree[..open]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    // Split the group at its top-level commas.
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    let mut out = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        for sub in expand(part) {
            let mut p = prefix.clone();
            p.extend(sub.into_iter().filter(|s| s != "self"));
            out.push(p);
        }
    }
    out
}

/// A path as a module path of the crate, if it is one of the crate's (`relative`:
/// a use item, where a path may start at a child module).
fn resolve(
    module: &[String],
    segs: &[String],
    children: &BTreeSet<String>,
    relative: bool,
) -> Option<Vec<String>> {
    let first = segs.first()?.as_str();
    let (mut base, rest): (Vec<String>, &[String]) = match first {
        "crate" => (Vec::new(), &segs[1..]),
        "super" => {
            let mut m = module.to_vec();
            let mut k = 0;
            while segs.get(k).is_some_and(|s| s == "super") {
                m.pop();
                k += 1;
            }
            (m, &segs[k..])
        }
        "self" if relative => (module.to_vec(), &segs[1..]),
        s if relative && children.contains(s) => (module.to_vec(), segs),
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Each file's imports (other files of the crate), by file.
fn import_graph(root_file: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mods = modules(root_file);
    let mut graph = BTreeMap::new();
    for (module, file) in &mods {
        let src = std::fs::read_to_string(file).unwrap_or_default();
        let code = code_only(&src);
        let code = without_tests(&code);
        let children: BTreeSet<String> = mods
            .keys()
            .filter(|k| k.len() == module.len() + 1 && k.starts_with(module))
            .filter_map(|k| k.last().cloned())
            .collect();
        let mut targets = BTreeSet::new();
        for r in references(module, code, &children) {
            // The longest prefix that is a module: `super::stats::age` is stats.rs.
            let target = (0..=r.len())
                .rev()
                .find_map(|n| mods.get(&r[..n]))
                .filter(|t| *t != file);
            targets.extend(target.cloned());
        }
        graph.insert(file.clone(), targets);
    }
    graph
}

/// A circle of imports, if there is one.
fn find_cycle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        n: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(n.clone());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn crate_roots() -> Vec<PathBuf> {
    let r = root();
    let mut roots = vec![
        r.join("src/lib.rs"),
        r.join("plugins/src/lib.rs"),
        r.join("cli/src/main.rs"),
    ];
    let bins = std::fs::read_dir(r.join("cli/src/bin")).expect("cli/src/bin");
    roots.extend(bins.filter_map(|e| e.ok()).map(|e| e.path()));
    roots
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn no_file_imports_one_that_imports_it_back() {
    for crate_root in crate_roots() {
        let graph = import_graph(&crate_root);
        if let Some(cycle) = find_cycle(&graph) {
            let names: Vec<String> = cycle.iter().map(|p| relative(p)).collect();
            panic!("imports go round a circle: {}", names.join(" -> "));
        }
    }
}

/// Functions of a file longer than `MAX_LINES`: (name, first line, lines).
fn long_functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        // From the `fn` line to the brace that closes its body (none: a declaration).
        let mut depth = 0i32;
        let mut opened = false;
        let mut end = None;
        'scan: for (j, l) in lines.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    ';' if !opened && depth == 0 => break 'scan,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            end = Some(j);
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(end) = end {
            let n = end - i + 1;
            if n > MAX_LINES {
                long.push((name, i + 1, n));
            }
        }
    }
    long
}

/// The name of the function a line starts, if it does.
fn fn_name(line: &str) -> Option<String> {
    let mut t = line.trim_start();
    for q in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
        "extern \"C\" ",
    ] {
        t = t.strip_prefix(q).unwrap_or(t);
        t = t.strip_prefix(q).unwrap_or(t);
    }
    if let Some(rest) = t.strip_prefix("pub(in ") {
        t = rest.split_once(") ").map_or(rest, |(_, r)| r);
    }
    let rest = t.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_function_is_longer_than_80_lines() {
    let mut files = Vec::new();
    for dir in ["src", "plugins/src", "cli/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 40, "found only {} files", files.len());
    let mut long = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap_or_default();
        for (name, line, n) in long_functions(&code_only(&src)) {
            let rel = relative(f);
            if !LONG_ALLOWED.contains(&(rel.as_str(), name.as_str())) {
                long.push(format!("{rel}:{line} {name}: {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The checks themselves: a circle and a long function are found, strings and
/// comments do not confuse them.
#[test]
fn the_checks_find_what_they_look_for() {
    let code = code_only("fn a() {\n let s = \"}}\"; // }\n let c = '}';\n}\n");
    assert_eq!(code.matches('}').count(), 1, "{code}");
    let body = "x();\n".repeat(MAX_LINES);
    let long = long_functions(&format!(
        "pub(super) fn big() {{\n{body}}}\nfn small() {{}}\n"
    ));
    assert_eq!(long, vec![("big".to_string(), 1, MAX_LINES + 2)]);
    let (a, b, c) = (PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c"));
    let mut g = BTreeMap::new();
    g.insert(a.clone(), BTreeSet::from([b.clone()]));
    g.insert(b.clone(), BTreeSet::from([c.clone()]));
    g.insert(c.clone(), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
    g.insert(c.clone(), BTreeSet::from([a.clone()]));
    assert!(find_cycle(&g).is_some());
    let m = vec!["x".to_string(), "y".to_string()];
    let kids = BTreeSet::from(["k".to_string()]);
    let code = "use super::{z::W, v};\nuse k::{self, Q};\nuse gst::X;\nfn f() { crate::q::r(); k::n(); }\n";
    let refs = references(&m, code, &kids);
    let want: Vec<Vec<&str>> = vec![
        vec!["x", "z", "W"],
        vec!["x", "v"],
        vec!["x", "y", "k"],
        vec!["x", "y", "k", "Q"],
        vec!["q", "r"],
    ];
    assert_eq!(refs, want);
}
