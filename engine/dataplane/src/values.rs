//! A row's cells by field name, held compactly: the one representation of a record's values
//! in every stage (the sample, the registries' answers, linked and anonymised rows, follow-up
//! events).
//!
//! A study holds hundreds of thousands of such rows between its steps. As a
//! `BTreeMap<String, Value>` a row of a dozen cells takes about 3.6 kB (a tree node per eleven
//! cells, each field name allocated once per row); here it takes about 1.2 kB: one vector of
//! (name, value) pairs sorted by name, each name interned once per process and shared by every
//! row (measured with a counting allocator). Sorted by name, a row iterates, serialises and
//! compares exactly as the map did, so every file written from it is byte for byte the same.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Field names in use, each held once.
static NAMES: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Mutex::default);

/// How many names are kept for sharing. The catalogue and the derived columns have a few
/// hundred; a supplied file may carry any names (an answer is refused for an unknown field
/// only after it is read), and those must not stay in memory for the life of the worker.
const SHARED_NAMES: usize = 4096;

/// The shared copy of a field name, or — once the shared names are full — a copy of its own,
/// freed with its row.
fn intern(name: &str) -> Arc<str> {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    intern_in(&mut names, name, SHARED_NAMES)
}

fn intern_in(names: &mut HashSet<Arc<str>>, name: &str, bound: usize) -> Arc<str> {
    if let Some(n) = names.get(name) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(name);
    if names.len() < bound {
        names.insert(n.clone());
    }
    n
}

/// A row's values by field name, sorted by name (see the module).
#[derive(Clone, Default, PartialEq)]
pub struct Values(Vec<(Arc<str>, Value)>);

impl Values {
    pub fn new() -> Values {
        Values(Vec::new())
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets a value; the one it replaced, if any.
    pub fn insert(&mut self, name: impl AsRef<str>, value: Value) -> Option<Value> {
        let name = name.as_ref();
        match self.position(name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (intern(name), value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).ok().map(|i| self.0.remove(i).1)
    }

    /// Keeps the cells for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The field names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    /// The cells, by name in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl std::ops::Index<&str> for Values {
    type Output = Value;

    /// The value of `name`; panics when the row has none, as a map does.
    fn index(&self, name: &str) -> &Value {
        self.get(name)
            .unwrap_or_else(|| panic!("no field `{name}` in the row"))
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>> FromIterator<(K, Value)> for Values {
    /// Later cells of the same name replace earlier ones, as in a map.
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Values {
        let mut cells: Vec<(Arc<str>, Value)> = iter
            .into_iter()
            .map(|(k, v)| (intern(k.as_ref()), v))
            .collect();
        // Stable: of equal names the last stays last, and is the one kept.
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Arc<str>, Value)> = Vec::with_capacity(cells.len());
        for cell in cells {
            match out.last_mut() {
                Some(last) if last.0 == cell.0 => *last = cell,
                _ => out.push(cell),
            }
        }
        out.shrink_to_fit();
        Values(out)
    }
}

impl IntoIterator for Values {
    type Item = (String, Value);
    type IntoIter = std::iter::Map<
        std::vec::IntoIter<(Arc<str>, Value)>,
        fn((Arc<str>, Value)) -> (String, Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v))
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Arc<str>, Value)>,
        fn(&'a (Arc<str>, Value)) -> (&'a str, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl Serialize for Values {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Values, D::Error> {
        struct Cells;
        impl<'de> Visitor<'de> for Cells {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Values, A::Error> {
                let mut cells: Vec<(Arc<str>, Value)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(256));
                while let Some(name) = access.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value: Value = access.next_value()?;
                    cells.push((intern(&name), value));
                }
                Ok(cells.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// The row behaves, serialises and reads back as the map it replaces: sorted by name, the
    /// last of a repeated name wins, and the JSON text is the map's.
    #[test]
    fn a_row_is_the_map_it_replaces() {
        let cells = [
            ("region", json!("Rīga")),
            ("birth_year", json!(1990)),
            ("sex", json!("female")),
            ("region", json!("Kurzeme")),
        ];
        let row: Values = cells.iter().cloned().collect();
        let map: BTreeMap<String, Value> = cells
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(
            row.keys().collect::<Vec<_>>(),
            ["birth_year", "region", "sex"]
        );
        assert_eq!(row.get("region"), Some(&json!("Kurzeme")));
        let back: Values = serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
        assert_eq!(back, row);

        let mut row = row;
        assert_eq!(row.insert("age", json!(36)), None);
        assert_eq!(row.insert("sex", json!("male")), Some(json!("female")));
        assert_eq!(row.remove("birth_year"), Some(json!(1990)));
        assert!(!row.contains_key("birth_year"));
        assert_eq!(row.keys().collect::<Vec<_>>(), ["age", "region", "sex"]);
        row.retain(|k, _| k != "age");
        assert_eq!(
            row.into_iter().collect::<Vec<_>>(),
            [
                ("region".to_owned(), json!("Kurzeme")),
                ("sex".to_owned(), json!("male"))
            ]
        );
        // Repeated keys in a stored row: the last wins, as serde_json's map did.
        let dup: Values = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(
            dup.iter().collect::<Vec<_>>(),
            [("a", &json!(3)), ("b", &json!(2))]
        );
        // Names are shared between rows.
        let (x, y): (Values, Values) = (
            [("offence_date", json!(1))].into_iter().collect(),
            [("offence_date", json!(2))].into_iter().collect(),
        );
        assert!(Arc::ptr_eq(&x.0[0].0, &y.0[0].0));
    }

    /// A file with any number of made-up field names does not keep them for the life of the
    /// process: the shared names stop at their bound; past it each name is a copy of its own.
    #[test]
    fn made_up_names_are_not_kept_past_the_bound() {
        let mut names = HashSet::new();
        let kept: Vec<Arc<str>> = (0..110)
            .map(|i| intern_in(&mut names, &format!("made_up_{i}"), 100))
            .collect();
        assert_eq!(names.len(), 100);
        assert!(Arc::ptr_eq(
            &kept[5],
            &intern_in(&mut names, "made_up_5", 100)
        ));
        let late = intern_in(&mut names, "made_up_105", 100);
        assert_eq!(&*late, "made_up_105");
        assert!(
            !Arc::ptr_eq(&kept[105], &late),
            "not shared, freed with its row"
        );
        assert_eq!(names.len(), 100);
    }
}
