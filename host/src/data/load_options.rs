//! How to load a file: which function of a component to call, and the
//! arguments of a command program.

/// How to load a file: which function to call, and for WASI command
/// programs, their arguments. The default loads a task component, or a
/// command program with no arguments.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub(crate) invoke: Option<String>,
    pub(crate) args: Vec<String>,
    pub(crate) args_template: Option<Vec<String>>,
}

impl LoadOptions {
    /// Options that load a task component or a command program as it is.
    pub fn new() -> LoadOptions {
        LoadOptions::default()
    }

    /// Calls the exported function `name` of a component (of any world):
    /// `name` for a function the component exports itself,
    /// `interface#name` for one of an exported interface (e.g.
    /// `example:shapes/geometry#area`).
    pub fn invoke(mut self, name: impl Into<String>) -> LoadOptions {
        self.invoke = Some(name.into());
        self
    }

    /// Appends an argument that every run of a command program gets, after
    /// those of the template.
    pub fn arg(mut self, arg: impl Into<String>) -> LoadOptions {
        self.args.push(arg.into());
        self
    }

    /// Passes each input to a command program as arguments instead of on
    /// stdin: every `{}` in these words is replaced by the input's text.
    pub fn args_template<I, S>(mut self, words: I) -> LoadOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args_template = Some(words.into_iter().map(Into::into).collect());
        self
    }
}
