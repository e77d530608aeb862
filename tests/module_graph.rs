//! The house's import rules, read from the source: imports run one way.
//!
//! * No circle among the crate's top-level modules (`balancer`, `registry`, `policy`, ...).
//! * No circle among its files either: inside a folder, files import each other directly
//!   (`super::state::EndpointState`), never through their own `mod.rs`, whose re-exports are
//!   for the rest of the crate.
//! * No code outside `lib.rs` imports a name through the crate root (`crate::Policy`): it
//!   imports from the module that owns it, so the root stays the top of the house.
//!
//! Every path into the crate counts (`crate::`, `super::`, a child module's re-export; `use`
//! lines, grouped or not, and `crate::` paths written inline); comments and test modules
//! (`#[cfg(test)] mod tests`, `tests.rs`) do not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// The crate's source files, by module path (`src/lib.rs` is `[]`).
fn source_files() -> BTreeMap<Module, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                if path.file_name().is_some_and(|n| n == "tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read source");
                files.insert(module_of(&root, &path), code_of(&text));
            }
        }
    }
    files
}

fn module_of(root: &Path, path: &Path) -> Module {
    let relative: PathBuf = path.strip_prefix(root).expect("under src").to_path_buf();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The file's code: comments dropped, and everything from its test module on.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every `crate::` or `super::` path the code names, as written (groups expanded).
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    // `use` statements, which may group: `use crate::{a::B, c::{D, E}};`
    let mut rest = code;
    while let Some(i) = find_word(rest, "use ") {
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        let tree: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        expand(&tree, &mut Vec::new(), &mut paths);
        rest = &after[end..];
    }
    // Paths written inline: `crate::registry::health_check_supported::<T>()`.
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && is_ident(code.as_bytes()[i - 1] as char) {
            continue;
        }
        let path: Vec<String> = code[i..]
            .split("::")
            .map(|s| s.chars().take_while(|c| is_ident(*c)).collect::<String>())
            .take_while(|s| !s.is_empty())
            .collect();
        // `crate::{...}` alone is a grouped `use`, read above.
        if path.len() > 1 {
            paths.push(path);
        }
    }
    paths.into_iter().filter(|p| !p.is_empty()).collect()
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || !is_ident(text.as_bytes()[i - 1] as char))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands one use tree (no whitespace) under `prefix` into flat paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree.find('{') {
        None => {
            let mut path = prefix.clone();
            path.extend(
                tree.split("::")
                    .map(|s| s.split(" as ").next().unwrap_or(s))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            out.push(path);
        }
        Some(open) => {
            let head: Vec<String> = tree[..open]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let close = tree.rfind('}').unwrap_or(tree.len());
            let depth = prefix.len();
            prefix.extend(head);
            for item in split_top_level(&tree[open + 1..close]) {
                expand(item, prefix, out);
            }
            prefix.truncate(depth);
        }
    }
}

fn split_top_level(items: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in items.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&items[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&items[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The file a path lands in: the longest prefix of it that is a module of the crate.
fn resolve(from: &Module, path: &[String], files: &BTreeMap<Module, String>) -> Option<Module> {
    let (mut absolute, mut rest): (Module, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "super" => (from[..from.len().checked_sub(1)?].to_vec(), &path[1..]),
        "self" => (from.clone(), &path[1..]),
        // A child module (`pub use state::EndpointState;` in a `mod.rs`), or another crate.
        child => {
            let mut inner = from.clone();
            inner.push(child.to_owned());
            if !files.contains_key(&inner) {
                return None;
            }
            (from.clone(), path)
        }
    };
    while rest.first().is_some_and(|s| s == "super") {
        absolute.pop();
        rest = &rest[1..];
    }
    let mut best = absolute.clone();
    for segment in rest {
        absolute.push(segment.clone());
        if files.contains_key(&absolute) {
            best = absolute.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// The strongly connected components of more than one node (Tarjan).
fn circles<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct Walk<'a, N> {
        edges: &'a BTreeMap<N, BTreeSet<N>>,
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on_stack: BTreeSet<N>,
        found: Vec<Vec<N>>,
    }
    impl<N: Ord + Clone> Walk<'_, N> {
        fn visit(&mut self, n: &N) {
            let i = self.index.len();
            self.index.insert(n.clone(), i);
            self.low.insert(n.clone(), i);
            self.stack.push(n.clone());
            self.on_stack.insert(n.clone());
            for m in self.edges.get(n).into_iter().flatten() {
                if !self.index.contains_key(m) {
                    self.visit(m);
                    let low = self.low[n].min(self.low[m]);
                    self.low.insert(n.clone(), low);
                } else if self.on_stack.contains(m) {
                    let low = self.low[n].min(self.index[m]);
                    self.low.insert(n.clone(), low);
                }
            }
            if self.low[n] == self.index[n] {
                let mut component = Vec::new();
                while let Some(m) = self.stack.pop() {
                    self.on_stack.remove(&m);
                    let done = &m == n;
                    component.push(m);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for n in edges.keys() {
        if !walk.index.contains_key(n) {
            walk.visit(n);
        }
    }
    walk.found
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "lib".to_owned()
    } else {
        module.join("::")
    }
}

struct Graph {
    files: BTreeMap<Module, BTreeSet<Module>>,
    top: BTreeMap<String, BTreeSet<String>>,
    through_root: Vec<String>,
}

fn graph() -> Graph {
    let sources = source_files();
    let mut graph = Graph {
        files: BTreeMap::new(),
        top: BTreeMap::new(),
        through_root: Vec::new(),
    };
    for (module, code) in &sources {
        let from = graph.files.entry(module.clone()).or_default();
        for path in paths_in(code) {
            let Some(to) = resolve(module, &path, &sources) else {
                continue;
            };
            if module.is_empty() {
                continue; // lib.rs declares and re-exports every module
            }
            if to.is_empty() {
                graph
                    .through_root
                    .push(format!("{} uses {}", name(module), path.join("::")));
                continue;
            }
            if &to == module {
                continue;
            }
            // A file's own `mod x;` children are not imports; its `use x::...` re-exports are.
            from.insert(to.clone());
            if to[0] != module[0] {
                graph
                    .top
                    .entry(module[0].clone())
                    .or_default()
                    .insert(to[0].clone());
            }
        }
    }
    graph
}

#[test]
fn top_level_modules_import_one_way() {
    let graph = graph();
    assert!(
        graph.top.len() > 10,
        "the walk should see most top-level modules: {:?}",
        graph.top.keys()
    );
    let found = circles(&graph.top);
    assert!(
        found.is_empty(),
        "top-level modules that import each other in a circle: {found:?}"
    );
}

#[test]
fn files_import_one_way() {
    let graph = graph();
    assert!(graph.files.len() > 50, "{} files", graph.files.len());
    let found: Vec<Vec<String>> = circles(&graph.files)
        .iter()
        .map(|c| c.iter().map(name).collect())
        .collect();
    assert!(
        found.is_empty(),
        "files that import each other in a circle: {found:?}"
    );
}

#[test]
fn nothing_imports_through_the_crate_root() {
    let graph = graph();
    assert!(
        graph.through_root.is_empty(),
        "import these from the module that owns them: {:?}",
        graph.through_root
    );
}

#[test]
fn the_reader_sees_groups_and_inline_paths() {
    let code = code_of(
        "use crate::{a::B, c::{d::E, F}};\nuse super::g::H;\nfn f() { crate::i::j::<T>(); }\n// use crate::k;\n",
    );
    let paths: Vec<String> = paths_in(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::a::B",
            "crate::c::d::E",
            "crate::c::F",
            "super::g::H",
            "crate::i::j"
        ]
    );
    // A circle is found, and only a circle.
    let mut edges: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::new();
    edges.entry(1).or_default().insert(2);
    edges.entry(2).or_default().insert(3);
    edges.entry(3).or_default().insert(1);
    edges.entry(3).or_default().insert(4);
    let found = circles(&edges);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
}
