//! Search hints: optional knowledge of a model that makes the search
//! faster or its reports clearer. Every hint has a default that is always
//! correct, so a new model implements `SearchHints` with an empty body and
//! adds hints only when a history needs them. Each hint states what it
//! must guarantee; the brute-force differential test holds the register
//! model's hints to it.

use crate::model::{Model, SearchOp};

/// What a model-specific decision procedure concluded about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    Violation(Finding),
}

/// An operation no linearization can contain, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The operation (index into the search ops).
    pub op: usize,
    /// Other operations the reason names (e.g. the write a stale read
    /// missed); with `op` they are the core of a witness.
    pub with: Vec<usize>,
    /// The reason, in words.
    pub why: String,
}

/// The shape of a violation in one sentence, whose `{0}`, `{1}`, ...
/// stand for the operations `ops[0]`, `ops[1]`, ... (indexes into the
/// key's operations), for the report to name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The sentence, with placeholders.
    pub text: String,
    /// The operations it names.
    pub ops: Vec<usize>,
}

/// What one operation needs in a witness (indexes into the key's
/// operations): every operation of `all_of`, and one of `any_of` unless it
/// is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Need {
    /// Operations that must all be present (the appends whose pieces a
    /// read shows).
    pub all_of: Vec<u32>,
    /// Operations of which one must be present (the writes of the value a
    /// read returned that could have come before it).
    pub any_of: Vec<u32>,
}

/// Optional hints for the search, all with safe defaults.
pub trait SearchHints: Model {
    /// Whether `op` only observes: such an operation with an uncertain
    /// outcome constrains nothing and is left out of the search, and one
    /// that fits the current state is linearized at once. `false` is
    /// always safe.
    fn is_read_only(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }

    /// Whether `op`'s result depends on the state it sees (a read, a cas, an
    /// append: yes; a blind write: no). The search uses it to place
    /// uncertain operations only where something observes them; `true` is
    /// always safe.
    fn reads_state(&self, op: &Self::Op) -> bool {
        let _ = op;
        true
    }

    /// For each uncertain operation of one partition (`uncertain[i]` true),
    /// whether it can be left out of the search because no linearization
    /// needs it. The default leaves everything in.
    fn redundant(&self, ops: &[Self::Op], uncertain: &[bool]) -> Vec<bool> {
        let _ = uncertain;
        vec![false; ops.len()]
    }

    /// A quick look for a certain operation that no linearization can
    /// contain, whatever the order (for a register: a read of a value that
    /// nothing wrote before the read returned). The finding must be
    /// certain; the default finds nothing.
    fn impossible(&self, ops: &[SearchOp<Self::Op>]) -> Option<Finding> {
        let _ = ops;
        None
    }

    /// A decision procedure for keys of a shape the model knows how to
    /// decide directly; `None` leaves the key to the search. When it
    /// answers, the answer must be exact.
    fn decide(&self, ops: &[SearchOp<Self::Op>]) -> Option<Decision> {
        let _ = ops;
        None
    }

    /// Operations whose success constrains every state before them, in
    /// the order the search should consult them (see
    /// [`SearchHints::reachable`]). While such an operation is not
    /// linearized, the search keeps only states from which it can still
    /// succeed; it consults the first watched operation not yet
    /// linearized. The default watches nothing.
    fn watched(&self, ops: &[SearchOp<Self::Op>]) -> Vec<usize> {
        let _ = ops;
        Vec::new()
    }

    /// Whether some sequence of operations from `state` can still lead to a
    /// state in which `op` succeeds. `false` must be certain (the search
    /// drops such states); `true` is always safe.
    fn reachable(&self, state: &Self::State, op: &Self::Op) -> bool {
        let _ = (state, op);
        true
    }

    /// Heap bytes `state` holds beyond its own size, for the memory budget's
    /// running estimate between measurements. Default: none.
    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        let _ = state;
        0
    }

    /// For witnesses: what each of the key's operations needs in a
    /// sub-history so that the value it observes is one some operation of
    /// the sub-history could have produced (when some operation of the key
    /// produced it). A sub-history lacking that is never taken for a
    /// witness: it would be invalid merely because the writes its reads saw
    /// were left out. Returned as a function of the operation's index, so
    /// that only the operations a witness considers pay for it. The
    /// default: nothing is needed.
    fn needs<'a>(&'a self, all: &'a [SearchOp<Self::Op>]) -> Box<dyn Fn(usize) -> Need + 'a> {
        let _ = all;
        Box::new(|_| Need::default())
    }

    /// For witnesses: one plain sentence naming the shape of the violation
    /// that `witness` (indexes into all of the key's `ops`, a minimal
    /// witness) shows, when it is a known one.
    fn shape(&self, ops: &[SearchOp<Self::Op>], witness: &[usize]) -> Option<Shape> {
        let _ = (ops, witness);
        None
    }
}
