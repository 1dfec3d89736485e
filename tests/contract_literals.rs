//! The pod contract has one home: every `HEALER_*` environment variable name in `src/` is written in
//! `src/contract/` and nowhere else (issue 7). A literal elsewhere is a second, drifting copy of the
//! contract between the controller and the attempt pod.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn healer_variable_names_are_written_only_in_the_contract_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let contract = src.join("contract");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found the sources: {}", files.len());
    let mut found = Vec::new();
    let mut in_contract = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("\"HEALER_") {
                if f.starts_with(&contract) {
                    in_contract += 1;
                } else {
                    found.push(format!("{}:{}: {}", f.strip_prefix(&src).unwrap().display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(in_contract >= 30, "the contract module holds the names ({in_contract} found)");
    assert!(
        found.is_empty(),
        "HEALER_* literals outside src/contract/ (use crate::contract::env):\n{}",
        found.join("\n")
    );
}
