use troupe_dispatcher::{Call, Error, Pid, Value};

/// How a process is resumed.
#[derive(Debug)]
pub enum Resume {
    /// First step: start running.
    Start,
    /// The answer to the command the process last yielded.
    Return(Result<Value, Error>),
    /// Carry on after a preemption.
    Continue,
}

/// What one step of a process ended with.
#[derive(Debug)]
pub enum Step {
    /// The process wants the dispatcher to run a command.
    Yield(Call),
    /// The process finished with a result.
    Done(Value),
    /// The process failed.
    Failed(Error),
    /// The process used up its time slice and wants to be resumed later.
    Preempted,
}

/// What a process sees of the scheduler while it is stepped.
#[derive(Debug)]
pub struct StepCx {
    /// The process being stepped.
    pub pid: Pid,
}

/// A steppable process: the contract between the scheduler and an engine.
///
/// `step` must not block: anything that waits is a [`Step::Yield`]ed command.
/// The scheduler guarantees a process is stepped by one worker at a time and
/// is never resumed while its previous command is still pending.
pub trait Process: Send + 'static {
    /// Runs the process until its next yield, its end, or preemption.
    fn step(&mut self, cx: &mut StepCx, input: Resume) -> Step;
}
