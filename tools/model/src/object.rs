//! `Object`: any one of the seven kinds, with uniform access to its
//! metadata and a JSON form for storage.

use std::fmt;

use serde::{Serialize, Serializer};

use super::{Cluster, EventHooks, Host, Kind, ObjectMeta, Pipeline, PipelineRun, Task, TaskRun};

/// Any object.
// Host carries a large status; objects are handled one at a time or in
// modest lists, so boxing every variant would cost more than it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A Host.
    Host(Host),
    /// A Cluster.
    Cluster(Cluster),
    /// A Task.
    Task(Task),
    /// A Pipeline.
    Pipeline(Pipeline),
    /// A TaskRun.
    TaskRun(TaskRun),
    /// A PipelineRun.
    PipelineRun(PipelineRun),
    /// An EventHooks.
    EventHooks(EventHooks),
}

/// Kind, namespace and name: an object's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Kind.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} (namespace {})",
            self.kind.plural(),
            self.name,
            self.namespace
        )
    }
}

/// Applies `$body` to the inner manifest, whatever its kind.
macro_rules! each {
    ($value:expr, $inner:ident => $body:expr) => {
        match $value {
            Object::Host($inner) => $body,
            Object::Cluster($inner) => $body,
            Object::Task($inner) => $body,
            Object::Pipeline($inner) => $body,
            Object::TaskRun($inner) => $body,
            Object::PipelineRun($inner) => $body,
            Object::EventHooks($inner) => $body,
        }
    };
}

impl Object {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Host(_) => Kind::Host,
            Object::Cluster(_) => Kind::Cluster,
            Object::Task(_) => Kind::Task,
            Object::Pipeline(_) => Kind::Pipeline,
            Object::TaskRun(_) => Kind::TaskRun,
            Object::PipelineRun(_) => Kind::PipelineRun,
            Object::EventHooks(_) => Kind::EventHooks,
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    /// The metadata, mutable.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each!(self, o => &mut o.metadata)
    }

    /// The `apiVersion` as written.
    pub fn api_version(&self) -> &str {
        each!(self, o => &o.api_version)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The namespace, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// Identity, with `default_namespace` when none is set.
    pub fn key(&self, default_namespace: &str) -> ObjectKey {
        ObjectKey {
            kind: self.kind(),
            namespace: self.namespace().unwrap_or(default_namespace).to_owned(),
            name: self.name().to_owned(),
        }
    }

    /// The JSON form (what the store keeps).
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        each!(self, o => serde_json::to_value(o))
    }

    /// Rebuilds an object of `kind` from its JSON form.
    pub fn from_json(kind: Kind, value: serde_json::Value) -> Result<Object, serde_json::Error> {
        Ok(match kind {
            Kind::Host => Object::Host(serde_json::from_value(value)?),
            Kind::Cluster => Object::Cluster(serde_json::from_value(value)?),
            Kind::Task => Object::Task(serde_json::from_value(value)?),
            Kind::Pipeline => Object::Pipeline(serde_json::from_value(value)?),
            Kind::TaskRun => Object::TaskRun(serde_json::from_value(value)?),
            Kind::PipelineRun => Object::PipelineRun(serde_json::from_value(value)?),
            Kind::EventHooks => Object::EventHooks(serde_json::from_value(value)?),
        })
    }

    /// Parses one YAML document of a known kind (errors carry serde_yaml's
    /// path and location).
    pub fn from_yaml_str(kind: Kind, text: &str) -> Result<Object, serde_yaml::Error> {
        Ok(match kind {
            Kind::Host => Object::Host(serde_yaml::from_str(text)?),
            Kind::Cluster => Object::Cluster(serde_yaml::from_str(text)?),
            Kind::Task => Object::Task(serde_yaml::from_str(text)?),
            Kind::Pipeline => Object::Pipeline(serde_yaml::from_str(text)?),
            Kind::TaskRun => Object::TaskRun(serde_yaml::from_str(text)?),
            Kind::PipelineRun => Object::PipelineRun(serde_yaml::from_str(text)?),
            Kind::EventHooks => Object::EventHooks(serde_yaml::from_str(text)?),
        })
    }

    /// Labels as a map (empty when none).
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.metadata().labels.clone().unwrap_or_default()
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        each!(self, o => o.serialize(s))
    }
}
