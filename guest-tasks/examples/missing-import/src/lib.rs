//! Exports the task world's `run`, but also imports `example:elsewhere/clock`,
//! which the wasmpool host does not provide.

wit_bindgen::generate!({
    inline: "
        package example:elsewhere;

        interface clock {
            now: func() -> u64;
        }

        world needs-a-clock {
            import clock;
            export run: func(input: list<u8>) -> result<list<u8>, string>;
        }
    ",
});

struct NeedsAClock;

impl Guest for NeedsAClock {
    fn run(_input: Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(example::elsewhere::clock::now().to_string().into_bytes())
    }
}

export!(NeedsAClock);
