//! The task index as lm-eval's `TaskIndex` builds it: every `*.yaml` under the task folders
//! (sorted by path, `__pycache__` skipped, later folders overriding earlier ones), each a task
//! (`task:`), a group (`group:` with a `task:` list) or, through their `tag:`, a tag naming
//! tasks. A name expands to the tasks it stands for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::yaml::{self, Map, Node};

/// What a name in the index stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A task file.
    Task,
    /// A group file: its `task:` list, aggregated by its `aggregate_metric_list`.
    Group,
    /// A tag: the tasks whose files carry it, in name order.
    Tag(BTreeSet<String>),
}

/// One name of the index.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The task, group or tag name.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// The file that defines it (none for a tag).
    pub file: Option<PathBuf>,
}

/// Every task, group and tag under some folders.
#[derive(Debug, Default)]
pub struct TaskIndex {
    entries: BTreeMap<String, Entry>,
    /// Files that could not be read, and why (lm-eval skips them silently).
    pub skipped: Vec<(PathBuf, String)>,
}

/// A task to build: its file and the keys that override the file's.
#[derive(Debug, Clone)]
pub struct TaskRef {
    /// The task's name.
    pub name: String,
    /// Its file.
    pub file: PathBuf,
    /// Keys set by the group that named it.
    pub overrides: Map,
    /// The group it was reached through, if any.
    pub group: Option<String>,
}

impl TaskIndex {
    /// Index the task files under `roots`, later roots overriding earlier ones.
    pub fn build(roots: &[PathBuf]) -> Result<TaskIndex, Error> {
        let mut index = TaskIndex::default();
        for root in roots {
            if !root.is_dir() {
                return Err(Error::file(
                    root,
                    "not a folder of lm-eval task files (`--include-path`)",
                ));
            }
            let mut files = Vec::new();
            walk(root, &mut files);
            files.sort_by_key(|p| p.to_string_lossy().into_owned());
            let mut own: BTreeMap<String, Entry> = BTreeMap::new();
            for file in files {
                match yaml::load(&file) {
                    Ok(cfg) => register(&cfg, &file, &mut own),
                    Err(e) => index.skipped.push((file, e.to_string())),
                }
            }
            index.entries.extend(own);
        }
        Ok(index)
    }

    /// Every entry, by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entry `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// The tasks `name` stands for, in lm-eval's order: a task itself, a tag's tasks by name,
    /// a group's members in its list order (nested groups and tags expanded).
    pub fn expand(&self, name: &str) -> Result<Vec<TaskRef>, Error> {
        let mut out = Vec::new();
        self.expand_into(name, &Map::new(), None, &mut out, 0)?;
        Ok(out)
    }

    fn expand_into(
        &self,
        name: &str,
        overrides: &Map,
        group: Option<&str>,
        out: &mut Vec<TaskRef>,
        depth: usize,
    ) -> Result<(), Error> {
        if depth > 16 {
            return Err(Error::Unknown {
                name: name.to_string(),
                hint: "groups nest more than 16 deep (a group that contains itself?)".into(),
            });
        }
        let entry = self.entries.get(name).ok_or_else(|| Error::Unknown {
            name: name.to_string(),
            hint: self.suggest(name),
        })?;
        match &entry.kind {
            Kind::Task => out.push(TaskRef {
                name: name.to_string(),
                file: entry.file.clone().unwrap_or_default(),
                overrides: overrides.clone(),
                group: group.map(str::to_string),
            }),
            Kind::Tag(tasks) => {
                for t in tasks {
                    self.expand_into(t, overrides, group, out, depth + 1)?;
                }
            }
            Kind::Group => {
                let file = entry.file.clone().unwrap_or_default();
                let cfg = yaml::load(&file)?;
                let mut group_overrides = overrides.clone();
                for (k, v) in &cfg {
                    if !GROUP_KEYS.contains(&k.as_str()) {
                        yaml::set(&mut group_overrides, k, v.clone());
                    }
                }
                let members = match cfg.iter().find(|(k, _)| k == "task").map(|(_, v)| v) {
                    Some(Node::List(l)) => l.clone(),
                    Some(Node::Str(s)) => vec![Node::Str(s.clone())],
                    _ => {
                        return Err(Error::file(
                            &file,
                            format!("group `{name}` lists no tasks under `task:`"),
                        ));
                    }
                };
                for m in members {
                    match m {
                        Node::Str(child) => {
                            self.expand_into(&child, &group_overrides, Some(name), out, depth + 1)?
                        }
                        Node::Map(item) => {
                            let child = item
                                .iter()
                                .find(|(k, _)| k == "task")
                                .and_then(|(_, v)| v.as_str().map(str::to_string))
                                .ok_or_else(|| Error::file(&file, format!("a member of group `{name}` must name a `task` (inline groups are not supported)")))?;
                            let mut o = group_overrides.clone();
                            for (k, v) in item {
                                if k != "task" {
                                    yaml::set(&mut o, &k, v);
                                }
                            }
                            self.expand_into(&child, &o, Some(name), out, depth + 1)?;
                        }
                        other => {
                            return Err(Error::file(
                                &file,
                                format!("group `{name}`: {} is not a task name", other.to_json()),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn suggest(&self, name: &str) -> String {
        let close: Vec<&str> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(name) || name.starts_with(k.as_str()))
            .take(5)
            .map(String::as_str)
            .collect();
        if close.is_empty() {
            format!(
                "{} names indexed; see `nlebench tasks list --include-path DIR`",
                self.entries.len()
            )
        } else {
            format!("did you mean {}?", close.join(", "))
        }
    }
}

/// `GroupConfig`'s own keys; every other key of a group file overrides its tasks' keys.
const GROUP_KEYS: [&str; 6] = [
    "group",
    "group_alias",
    "task",
    "aggregate_metric_list",
    "metadata",
    "tag",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "__pycache__" && name != ".ipynb_checkpoints" {
                walk(&p, out);
            }
        } else if name.ends_with(".yaml") {
            out.push(p);
        }
    }
}

fn register(cfg: &Map, file: &Path, index: &mut BTreeMap<String, Entry>) {
    let get = |k: &str| cfg.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    // A Python task class (`class:`) is a task whatever else the file says; building it is
    // refused (nlebench runs no Python).
    if let (None, Some(Node::Str(group))) = (get("class"), get("group")) {
        index.entry(group.clone()).or_insert_with(|| Entry {
            name: group.clone(),
            kind: Kind::Group,
            file: Some(file.to_path_buf()),
        });
        return;
    }
    let Some(Node::Str(task)) = get("task") else {
        return;
    };
    if index.contains_key(task) {
        return;
    }
    index.insert(
        task.clone(),
        Entry {
            name: task.clone(),
            kind: Kind::Task,
            file: Some(file.to_path_buf()),
        },
    );
    let tags = match get("tag") {
        Some(Node::Str(t)) => vec![t.clone()],
        Some(Node::List(l)) => l
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    for tag in tags {
        let entry = index.entry(tag.clone()).or_insert_with(|| Entry {
            name: tag,
            kind: Kind::Tag(BTreeSet::new()),
            file: None,
        });
        if let Kind::Tag(tasks) = &mut entry.kind {
            tasks.insert(task.clone());
        }
    }
}
