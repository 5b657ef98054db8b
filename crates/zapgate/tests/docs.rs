//! The README and the docs agree with the configuration loader: the README's
//! table is the loader's table, and no file names a `ZAPGATE_*` variable
//! the server does not read.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use zapgate::config::{Fallback, VARIABLES};

/// Read by the tests and the benchmark, never by the server.
const NOT_THE_SERVERS: &[&str] = &[
    "ZAPGATE_TEST_POSTGRES_URL",
    "ZAPGATE_TEST_REQUIRE_POSTGRES",
    "ZAPGATE_TEST_REQUIRE_BROWSER",
    "ZAPGATE_TEST_SCREENSHOTS",
    "ZAPGATE_BENCH_POSTGRES_URL",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README's configuration table, as the loader's table renders it.
fn rendered_table() -> String {
    let mut table = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for v in VARIABLES {
        let default = match v.default {
            Fallback::Value(value) => format!("`{value}`"),
            Fallback::Absent(text) => text.to_owned(),
        };
        assert!(
            !format!("{default}{}", v.meaning).contains('|'),
            "{}: a | would break the table",
            v.name
        );
        table.push_str(&format!("| `{}` | {default} | {} |\n", v.name, v.meaning));
    }
    table
}

#[test]
fn the_readme_configuration_table_is_the_loaders_table() {
    let readme = read(&root().join("README.md"));
    let header = "| variable | default | meaning |";
    let start = readme
        .find(header)
        .expect("the README has a configuration table");
    let table: String = readme[start..]
        .lines()
        .take_while(|line| line.starts_with('|'))
        .map(|line| format!("{line}\n"))
        .collect();
    let expected = rendered_table();
    assert!(
        table == expected,
        "README.md's configuration table differs from crates/zapgate/src/config.rs; replace it with:\n\n{expected}"
    );
}

/// Every `ZAPGATE_...` name in `text`.
fn variable_names(text: &str) -> BTreeSet<String> {
    text.match_indices("ZAPGATE_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.len() > "ZAPGATE_".len())
        .collect()
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "md") {
            found.push(path);
        }
    }
}

#[test]
fn every_zapgate_variable_named_in_code_or_docs_is_one_the_server_reads() {
    let root = root();
    let mut files = vec![
        root.join("README.md"),
        root.join(".ci/run"),
        root.join(".ci/walkthrough"),
        root.join("bench/run.sh"),
    ];
    for dir in ["crates", "bench", "docs"] {
        files_under(&root.join(dir), &mut files);
    }
    let known: BTreeSet<&str> = VARIABLES
        .iter()
        .map(|v| v.name)
        .chain(NOT_THE_SERVERS.iter().copied())
        .collect();
    let mut unknown = Vec::new();
    for file in &files {
        for name in variable_names(&read(file)) {
            if !known.contains(name.as_str()) {
                let shown = file.strip_prefix(&root).unwrap_or(file);
                unknown.push(format!("{}: {name}", shown.display()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "not in crates/zapgate/src/config.rs's table:\n{}",
        unknown.join("\n")
    );
    // The scan saw the files it is meant to guard.
    assert!(files.iter().any(|f| f.ends_with("config.rs")));
    assert!(files.len() > 50, "{} files", files.len());
}
