;; A component whose one export, `lists: func(mode: u32) -> list<list<u8>>`,
;; returns a small honest value or one that is cheap for the guest and
;; costly for whoever reads it, to check that `wasmpool run --invoke` bounds
;; what it reads (tests/all/hostile.rs):
;;
;;   mode 0: [[1, 2, 3], [1, 2, 3]]
;;   mode 1: 4,096 lists that all point at the same 64 KiB: 32 KiB of list
;;           headers in the guest's memory, 268,435,456 elements to read
;;   mode 2: one list of 65,536 bytes: its JSON is some 128 KiB, but each
;;           element read is a whole value on the host
;;
;; Memory: the shared bytes at 0 (starting 1, 2, 3), the list headers at
;; 65536, the returned (pointer, length) pair at 131072.
(component
  (core module $m
    (memory (export "memory") 3)
    (data (i32.const 0) "\01\02\03")
    (func (export "lists") (param $mode i32) (result i32)
      (local $i i32)
      (local $count i32)
      (local $len i32)
      (block $chosen
        (if (i32.eqz (local.get $mode))
          (then
            (local.set $count (i32.const 2))
            (local.set $len (i32.const 3))
            (br $chosen)))
        (if (i32.eq (local.get $mode) (i32.const 1))
          (then
            (local.set $count (i32.const 4096))
            (local.set $len (i32.const 65536))
            (br $chosen)))
        (local.set $count (i32.const 1))
        (local.set $len (i32.const 65536)))
      (block $done
        (loop $fill
          (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
          (i32.store
            (i32.add (i32.const 65536) (i32.shl (local.get $i) (i32.const 3)))
            (i32.const 0))
          (i32.store
            (i32.add (i32.const 65540) (i32.shl (local.get $i) (i32.const 3)))
            (local.get $len))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $fill)))
      (i32.store (i32.const 131072) (i32.const 65536))
      (i32.store (i32.const 131076) (local.get $count))
      (i32.const 131072)))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $memory))
  (alias core export $i "lists" (core func $lists))
  (type $lists-type (func (param "mode" u32) (result (list (list u8)))))
  (func $lifted (type $lists-type) (canon lift (core func $lists) (memory $memory)))
  (export "lists" (func $lifted))
)
