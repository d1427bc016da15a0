//! Tidy checks over the workspace's source, inside `cargo test`: in every crate, no module
//! uses a module that uses it back, and every module says what it is for (`//!`); the
//! README's cost table is what the cost script prints.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Each module of `src` (by file name) and the modules its `crate::` paths name; a name that
/// `lib.rs` re-exports (`pub use deploy::{deploy, ...}`) counts as the module it comes from.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let sources: BTreeMap<String, String> = std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let module = path.file_stem().expect("a file name").to_string_lossy();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (module.into_owned(), text)
        })
        .collect();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for statement in sources["lib"].split(';') {
        let Some((_, path)) = statement.split_once("pub use ") else {
            continue;
        };
        let Some((module, names)) = path.trim().split_once("::") else {
            continue;
        };
        for name in first_segments(names) {
            owner.insert(name, module.to_owned());
        }
    }
    sources
        .iter()
        .filter(|(module, _)| *module != "lib" && *module != "main")
        .map(|(module, text)| {
            let used = text
                .split("crate::")
                .skip(1)
                .flat_map(first_segments)
                .map(|name| owner.get(&name).cloned().unwrap_or(name))
                .filter(|name| name != module && sources.contains_key(name))
                .collect();
            (module.clone(), used)
        })
        .collect()
}

/// The first identifier of a path, or of each member of a `{...}` group that starts it.
fn first_segments(path: &str) -> Vec<String> {
    let ident = |text: &str| {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let Some(group) = path.trim_start().strip_prefix('{') else {
        return vec![ident(path)];
    };
    let mut members = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                members.push(&group[start..at]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    members
        .into_iter()
        .map(ident)
        .filter(|name| !name.is_empty() && name != "self")
        .collect()
}

/// The `src` directory of every crate of the workspace.
fn crate_sources() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root");
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .map(|entry| entry.expect("a directory entry").path().join("src"))
        .chain([root.join("infra/src"), root.join("xtask/src")])
        .filter(|src| src.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let sources = crate_sources();
    assert!(sources.len() > 10, "found only {sources:?}");
    let deploy = imports(
        sources
            .iter()
            .find(|s| s.ends_with("deploy/src"))
            .expect("deploy"),
    );
    assert!(
        deploy["deploy"].contains("change_set"),
        "the import scan found nothing: {deploy:?}"
    );
    let mut cycles = Vec::new();
    for src in &sources {
        if !src.join("lib.rs").exists() {
            continue;
        }
        let imports = imports(src);
        for (module, used) in &imports {
            for other in used {
                if module < other && imports[other].contains(module) {
                    cycles.push(format!("{}: {module}.rs <-> {other}.rs", src.display()));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other (move what both need into one of them, or into a \
         module of its own): {cycles:?}"
    );
}

#[test]
fn every_module_says_what_it_is_for() {
    fn walk(dir: &Path, missing: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("a readable directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, missing);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a readable file");
                if !text.starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    let mut missing = Vec::new();
    for src in crate_sources() {
        walk(&src, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` line saying what they are for: {missing:?}"
    );
}

#[test]
fn the_readme_cost_table_is_what_the_cost_script_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new("python3")
        .arg("docs/webhook-cost.py")
        .args(["--check", "README.md"])
        .current_dir(&root)
        .output()
        .expect("python3 runs docs/webhook-cost.py: install Python 3");
    assert!(
        output.status.success(),
        "README.md's cost table is stale: run `python3 docs/webhook-cost.py` and paste its \
         output into README.md\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
