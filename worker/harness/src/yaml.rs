//! Task files as lm-eval reads them (`lm_eval.tasks._yaml_loader.load_yaml`, PyYAML): YAML whose
//! `include` files are merged under the file's own keys (recursively, relative to the file,
//! cycles refused), and whose `!function module.name` values name a Python function next to
//! the file that declared them.

use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, VariantAccess, Visitor};

use crate::Error;

/// A value of a task file.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null` or absent.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(String, Node)>),
    /// `!function module.name`.
    Function(FunctionRef),
}

/// A `!function` reference and where it is resolved from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// `utils.p0_nb` or `lm_eval.tasks.noreval.noridiom.utils.filter_dataset_nb`.
    pub qualified: String,
    /// The directory of the file that declared it.
    pub dir: PathBuf,
}

impl FunctionRef {
    /// The function's name (after the last dot).
    pub fn name(&self) -> &str {
        self.qualified.rsplit('.').next().unwrap_or(&self.qualified)
    }

    /// The Python module file it names, as lm-eval finds it: `module.py` next to the file,
    /// else (for a dotted path into `lm_eval.tasks`) the file under lm-eval's task folder that
    /// holds the declaring file.
    pub fn module_file(&self) -> Option<PathBuf> {
        let (module, _) = self.qualified.rsplit_once('.')?;
        let local = self.dir.join(format!("{}.py", module.replace('.', "/")));
        if local.exists() {
            return Some(local);
        }
        let rel = module.strip_prefix("lm_eval.tasks.")?;
        let mut root = self.dir.as_path();
        while !root.ends_with("lm_eval/tasks") {
            root = root.parent()?;
        }
        let file = root.join(format!("{}.py", rel.replace('.', "/")));
        file.exists().then_some(file)
    }
}

impl Node {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON (a function as its qualified name).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Node::Null => J::Null,
            Node::Bool(b) => J::Bool(*b),
            Node::Int(i) => J::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Node::Str(s) => J::String(s.clone()),
            Node::List(l) => J::Array(l.iter().map(Node::to_json).collect()),
            Node::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Node::Function(f) => J::String(format!("!function {}", f.qualified)),
        }
    }

    /// The entry `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A mapping's entries, in order, later keys replacing earlier ones in place.
pub type Map = Vec<(String, Node)>;

/// Set `key` in `map`, replacing an existing entry where it stands.
pub fn set(map: &mut Map, key: &str, value: Node) {
    match map.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => map.push((key.to_string(), value)),
    }
}

/// Read `path` and merge its includes (`include: FILE` or a list), the file's own keys last.
pub fn load(path: &Path) -> Result<Map, Error> {
    load_inner(path, &mut Vec::new())
}

fn load_inner(path: &Path, seen: &mut Vec<PathBuf>) -> Result<Map, Error> {
    let path = std::fs::canonicalize(path)
        .map_err(|e| Error::file(path, format!("cannot read it: {e}")))?;
    if seen.contains(&path) {
        return Err(Error::file(
            &path,
            "include cycle: the file includes itself",
        ));
    }
    seen.push(path.clone());
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::file(&path, format!("cannot read it: {e}")))?;
    let Raw(mut node) = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::file(&path, format!("not valid YAML: {e}")))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    anchor(&mut node, &dir);
    let Node::Map(mut own) = node else {
        return Err(Error::file(
            &path,
            "a task file must be a mapping of keys to values",
        ));
    };
    let Some(at) = own.iter().position(|(k, _)| k == "include") else {
        return Ok(own);
    };
    let (_, includes) = own.remove(at);
    let includes = match includes {
        Node::Str(s) => vec![s],
        Node::List(l) => l
            .into_iter()
            .map(|n| match n {
                Node::Str(s) => Ok(s),
                _ => Err(Error::file(&path, "`include` lists file names")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(Error::file(
                &path,
                "`include` is a file name or a list of them",
            ));
        }
    };
    let mut merged = Map::new();
    for inc in includes {
        let inc_path = dir.join(&inc);
        let mut sub = load_inner(&inc_path, seen)?;
        sub.retain(|(k, _)| k != "task_list");
        for (k, v) in sub {
            set(&mut merged, &k, v);
        }
    }
    for (k, v) in own {
        set(&mut merged, &k, v);
    }
    Ok(merged)
}

/// A YAML value as PyYAML reads it: a repeated key keeps its last value; a `!tag` reaches
/// the visitor as an enum whose variant is the tag.
struct Raw(Node);

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor).map(Raw)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom(format!("{v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(Raw(n)) = seq.next_element()? {
            items.push(n);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Map::new();
        while let Some((Raw(k), Raw(v))) = map.next_entry()? {
            let key = match k {
                Node::Str(s) => s,
                Node::Int(i) => i.to_string(),
                Node::Bool(b) => if b { "True" } else { "False" }.to_string(),
                other => {
                    return Err(de::Error::custom(format!(
                        "a key must be text, not {}",
                        other.to_json()
                    )));
                }
            };
            set(&mut out, &key, v);
        }
        Ok(Node::Map(out))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (tag, value): (String, _) = data.variant()?;
        match tag.trim_start_matches('!') {
            "function" => {
                let qualified: String = value.newtype_variant()?;
                Ok(Node::Function(FunctionRef {
                    qualified,
                    dir: PathBuf::new(),
                }))
            }
            other => Err(de::Error::custom(format!(
                "unknown YAML tag `!{other}` (lm-eval task files know `!function`)"
            ))),
        }
    }
}

/// Give every `!function` the folder of the file that declared it.
fn anchor(node: &mut Node, dir: &Path) {
    match node {
        Node::Function(f) => f.dir = dir.to_path_buf(),
        Node::List(items) => items.iter_mut().for_each(|n| anchor(n, dir)),
        Node::Map(entries) => entries.iter_mut().for_each(|(_, n)| anchor(n, dir)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_merge_under_the_files_own_keys_and_functions_keep_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("_base_yaml"), "output_type: multiple_choice\ndoc_to_text: base\nprocess_docs: !function utils.fix\ntask_list: [x]\n").unwrap();
        std::fs::write(
            sub.join("t.yaml"),
            "task: t\ninclude: ../_base_yaml\ndoc_to_text: own\n",
        )
        .unwrap();
        let m = load(&sub.join("t.yaml")).unwrap();
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["output_type", "doc_to_text", "process_docs", "task"]);
        assert_eq!(m[1].1, Node::Str("own".into()));
        let Node::Function(f) = &m[2].1 else {
            panic!("{:?}", m[2])
        };
        assert_eq!(f.name(), "fix");
        assert_eq!(f.dir, std::fs::canonicalize(dir.path()).unwrap());

        std::fs::write(dir.path().join("a.yaml"), "task: a\ninclude: b.yaml\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "include: a.yaml\n").unwrap();
        let e = load(&dir.path().join("a.yaml")).unwrap_err().to_string();
        assert!(e.contains("include cycle"), "{e}");
        std::fs::write(
            dir.path().join("c.yaml"),
            "task: c\nx: !python/name:os.system\n",
        )
        .unwrap();
        let e = load(&dir.path().join("c.yaml")).unwrap_err().to_string();
        assert!(
            e.contains("c.yaml") && e.contains("unknown YAML tag"),
            "{e}"
        );
    }
}
