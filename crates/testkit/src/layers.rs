//! Checks a crate's module graph against the layers its layout doc states.
//!
//! Each crate keeps a table of its top-level modules and the modules each may
//! import; [`check`] reads every source file under `src/`, resolves the
//! `crate::…`, `super::…` and `self::…` paths it names to modules, and
//! reports:
//! - a top-level module importing one its row does not allow (an upward
//!   import), or a module missing from the table;
//! - a table that itself has a cycle;
//! - a cycle between the files of one directory module (siblings such as
//!   `config/file.rs` and `config/settings.rs`).
//!
//! Why by hand: no maintained crate checks module layering inside one Rust
//! crate (cargo-modules draws the graph but asserts nothing, and needs
//! rust-analyzer). Paths are found lexically, which is exact enough for
//! code formatted by rustfmt: comments are skipped, and an inline
//! `mod tests { … }` is read as a child of its file, so its `super::*`
//! means the file itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// A crate's top-level modules, each with the top-level modules it may
/// import. Lower layers first is the convention, not a requirement.
pub type Table<'a> = &'a [(&'a str, &'a [&'a str])];

/// What [`check`] found wrong, one line each.
#[derive(Debug, Default)]
pub struct Violations(pub Vec<String>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.0 {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Checks the crate whose sources are in `src` (its `lib.rs` is the root;
/// `main.rs` is another crate and is skipped) against `table`.
pub fn check(src: &Path, table: Table<'_>) -> Result<(), Violations> {
    let tree = ModuleTree::read(src);
    let mut violations = Vec::new();

    let allowed: BTreeMap<&str, BTreeSet<&str>> = table
        .iter()
        .map(|(module, imports)| (*module, imports.iter().copied().collect()))
        .collect();
    for top in tree.top_level() {
        if !allowed.contains_key(top.as_str()) {
            violations.push(format!(
                "module `{top}` is not in the layer table: add its row"
            ));
        }
    }
    for module in allowed.keys() {
        if !tree.top_level().contains(*module) {
            violations.push(format!(
                "the layer table names `{module}`, which does not exist"
            ));
        }
    }
    let table_graph: Graph = allowed
        .iter()
        .map(|(module, imports)| {
            let targets = imports.iter().map(|target| target.to_string()).collect();
            (module.to_string(), targets)
        })
        .collect();
    if let Some(cycle) = find_cycle(&table_graph) {
        violations.push(format!(
            "the layer table has a cycle: {}",
            cycle.join(" → ")
        ));
    }

    // Edges between siblings, keyed by their parent module.
    let mut siblings: BTreeMap<Vec<String>, Graph> = BTreeMap::new();
    for file in &tree.files {
        for reference in &file.references {
            let target = tree.resolve(&reference.path);
            let common = file
                .module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            // An ancestor or a descendant is not a sibling edge.
            if common == file.module.len() || common == target.len() {
                continue;
            }
            let from = &file.module[common];
            let to = &target[common];
            if common == 0 {
                let permitted = allowed
                    .get(from.as_str())
                    .is_some_and(|imports| imports.contains(to.as_str()));
                if !permitted {
                    violations.push(format!(
                        "{}:{}: `{from}` imports `{to}` ({}), which its layer does not allow",
                        file.path.display(),
                        reference.line,
                        reference.path.join("::"),
                    ));
                }
            } else {
                siblings
                    .entry(file.module[..common].to_vec())
                    .or_default()
                    .entry(from.clone())
                    .or_default()
                    .insert(to.clone());
            }
        }
    }
    for (parent, graph) in &siblings {
        if let Some(cycle) = find_cycle(graph) {
            violations.push(format!(
                "files of `{}` import each other: {}",
                parent.join("::"),
                cycle.join(" → ")
            ));
        }
    }

    if violations.is_empty() {
        Ok(())
    } else {
        Err(Violations(violations))
    }
}

/// The test each crate runs: panics with every violation of the crate whose
/// manifest is in `manifest_dir` (pass `env!("CARGO_MANIFEST_DIR")`).
pub fn assert_layers(manifest_dir: &str, table: Table<'_>) {
    if let Err(violations) = check(&Path::new(manifest_dir).join("src"), table) {
        panic!("{violations}");
    }
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// One cycle of `graph`, its first node repeated at the end, if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

/// The crate's modules as its files lay them out.
struct ModuleTree {
    /// Every module path that is a file or a directory (`["hub", "state"]`).
    modules: BTreeSet<Vec<String>>,
    files: Vec<SourceFile>,
}

struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    references: Vec<Reference>,
}

/// A path named in a file, made absolute (`["store", "Change"]`).
struct Reference {
    path: Vec<String>,
    line: usize,
}

impl ModuleTree {
    fn read(src: &Path) -> ModuleTree {
        let mut paths = Vec::new();
        collect_files(src, &mut paths);
        let mut modules = BTreeSet::new();
        let mut located = Vec::new();
        for path in paths {
            let Ok(relative) = path.strip_prefix(src) else {
                continue;
            };
            if relative == Path::new("main.rs") {
                continue;
            }
            let mut module: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module
                .last()
                .is_some_and(|last| last == "mod" || last == "lib")
            {
                module.pop();
            }
            for depth in 1..=module.len() {
                modules.insert(module[..depth].to_vec());
            }
            located.push((path, module));
        }
        let files = located
            .into_iter()
            .map(|(path, module)| {
                let text = fs::read_to_string(&path).unwrap_or_default();
                let references = references(&text, &module);
                SourceFile {
                    path,
                    module,
                    references,
                }
            })
            .collect();
        ModuleTree { modules, files }
    }

    fn top_level(&self) -> BTreeSet<String> {
        self.modules
            .iter()
            .filter(|module| module.len() == 1)
            .map(|module| module[0].clone())
            .collect()
    }

    /// The deepest module `path` names (an item's path ends at its module).
    fn resolve(&self, path: &[String]) -> Vec<String> {
        let mut module = Vec::new();
        for segment in path {
            module.push(segment.clone());
            if !self.modules.contains(&module) {
                module.pop();
                break;
            }
        }
        module
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module paths a file's code names, resolved against its own module.
/// Code after `#[cfg(test)]` followed by an inline `mod NAME {` is read as
/// that child module.
fn references(text: &str, module: &[String]) -> Vec<Reference> {
    // Comments dropped, lines kept, so that a `use` group spread over
    // several lines (as rustfmt writes long ones) is read whole.
    let code: Vec<&str> = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or("").trim_end())
        .collect();
    let child_from = code.windows(2).enumerate().find_map(|(index, pair)| {
        let name = pair[1].trim().strip_prefix("mod ")?.strip_suffix(" {")?;
        (pair[0].trim() == "#[cfg(test)]").then(|| (index + 1, name.to_string()))
    });
    let code = code.join("\n");
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (offset, path) in paths_in(&code) {
        let line = line_of(offset);
        let mut here = module.to_vec();
        if let Some((from, name)) = &child_from
            && line > *from
        {
            here.push(name.clone());
        }
        if let Some(absolute) = absolute(&path, &here) {
            found.push(Reference {
                path: absolute,
                line,
            });
        }
    }
    found
}

/// `crate::a::b`, `super::a`, `self::a` paths in code, with
/// `use x::{a, b::c}` groups expanded. Each path as its segments, with the
/// offset where it starts.
fn paths_in(code: &str) -> Vec<(usize, Vec<String>)> {
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let mut start = 0;
    while start < code.len() {
        let rest = &code[start..];
        let Some(offset) = ["crate::", "super::", "self::"]
            .iter()
            .filter_map(|root| rest.find(root))
            .min()
        else {
            break;
        };
        let at = start + offset;
        let preceded_by_ident = at > 0 && {
            let before = bytes[at - 1];
            before.is_ascii_alphanumeric() || before == b'_' || before == b':'
        };
        let (expanded, end) = expand(&code[at..]);
        if !preceded_by_ident {
            paths.extend(expanded.into_iter().map(|path| (at, path)));
        }
        start = at + end.max(1);
    }
    paths
}

/// Expands the path at the start of `text` (`a::b::{c, d::e}`) into its
/// leaf paths; returns them and how many bytes were read.
fn expand(text: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut index = 0;
    let bytes = text.as_bytes();
    loop {
        let ident_end = text[index..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |end| index + end);
        if ident_end > index {
            prefix.push(text[index..ident_end].to_string());
        }
        index = ident_end;
        if text[index..].starts_with("::") {
            index += 2;
            if bytes.get(index) == Some(&b'{') {
                let mut paths = Vec::new();
                let mut depth = 0;
                let mut item_start = index + 1;
                let mut end = text.len();
                for (offset, c) in text[index..].char_indices() {
                    let position = index + offset;
                    match c {
                        '{' => depth += 1,
                        '}' | ',' if depth == 1 => {
                            let item = text[item_start..position].trim();
                            if !item.is_empty() {
                                for mut tail in expand(item).0 {
                                    // `a::{self, b}`: `self` is `a` itself.
                                    if tail == ["self"] {
                                        tail.clear();
                                    }
                                    let mut path = prefix.clone();
                                    path.append(&mut tail);
                                    paths.push(path);
                                }
                            }
                            item_start = position + 1;
                            if c == '}' {
                                end = position + 1;
                                break;
                            }
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                return (paths, end);
            }
            continue;
        }
        return (vec![prefix], index);
    }
}

/// Makes `path` absolute from `module`; `None` for paths that are not
/// rooted in this crate.
fn absolute(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => {
            let mut absolute = module.to_vec();
            absolute.extend_from_slice(rest);
            Some(absolute)
        }
        "super" => {
            let mut base = module.to_vec();
            base.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|segment| segment == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend_from_slice(rest);
            Some(base)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(path: &[&str]) -> Vec<String> {
        path.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn groups_expand_to_each_leaf() {
        let paths: Vec<_> = paths_in("use super::super::{\n    rows::{self, Row},\n    rules,\n};")
            .into_iter()
            .map(|(_, path)| path)
            .collect();
        assert_eq!(
            paths,
            vec![
                strings(&["super", "super", "rows"]),
                strings(&["super", "super", "rows", "Row"]),
                strings(&["super", "super", "rules"]),
            ]
        );
    }

    #[test]
    fn inline_paths_and_roots_resolve() {
        let module = strings(&["hub", "state"]);
        let found = references(
            "    crate::telemetry::hub_stats(x); super::Command",
            &module,
        );
        let found: Vec<_> = found.into_iter().map(|r| r.path).collect();
        assert_eq!(
            found,
            vec![
                strings(&["telemetry", "hub_stats"]),
                strings(&["hub", "Command"])
            ]
        );
    }

    #[test]
    fn a_test_module_inside_a_file_is_its_child() {
        let module = strings(&["store", "rules"]);
        let text = "use super::rows;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}";
        let found: Vec<_> = references(text, &module)
            .into_iter()
            .map(|r| r.path)
            .collect();
        assert_eq!(
            found,
            vec![strings(&["store", "rows"]), strings(&["store", "rules"])]
        );
    }

    #[test]
    fn a_cycle_is_found_and_a_tree_is_not() {
        let mut graph = Graph::new();
        graph.entry("a".into()).or_default().insert("b".into());
        graph.entry("b".into()).or_default().insert("c".into());
        assert_eq!(find_cycle(&graph), None);
        graph.entry("c".into()).or_default().insert("a".into());
        assert_eq!(find_cycle(&graph), Some(strings(&["a", "b", "c", "a"])));
    }

    #[test]
    fn an_upward_import_and_a_sibling_cycle_are_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path();
        fs::create_dir(src.join("config")).expect("mkdir");
        fs::write(src.join("lib.rs"), "pub mod config;\npub mod store;\n").expect("write");
        fs::write(src.join("store.rs"), "use crate::config::Config;\n").expect("write");
        fs::write(src.join("config/mod.rs"), "mod file;\nmod settings;\n").expect("write");
        fs::write(src.join("config/file.rs"), "use super::settings::X;\n").expect("write");
        fs::write(src.join("config/settings.rs"), "use super::file::Y;\n").expect("write");

        let layers: Table<'_> = &[("config", &[]), ("store", &[])];
        let violations = check(src, layers).expect_err("two violations").0;
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(
            violations[0].contains("`store` imports `config`"),
            "{violations:?}"
        );
        assert!(
            violations[1].contains("file → settings → file"),
            "{violations:?}"
        );

        fs::write(src.join("config/settings.rs"), "pub struct Y;\n").expect("write");
        let layers: Table<'_> = &[("config", &[]), ("store", &["config"])];
        check(src, layers).expect("a clean tree");
    }
}
