import Synchronization
import SystemCalls

/// Runs `body(worker)` for workers 0..<count and waits for all: worker 0 on
/// the calling thread, the others on threads of their own. Dedicated threads
/// rather than a pool: the work blocks in sanlock and disk calls, and a
/// registered sanlock connection must stay on one thread.
///
/// pthreads, not Foundation's `Thread` or Dispatch: when a thread cannot be
/// made (EAGAIN, its stack cannot be mapped) `Thread` never runs its block
/// and a wait for it never ends, and Dispatch aborts when it cannot set up
/// its epoll; here that worker's share runs on the calling thread instead.
func onWorkerThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    var threads: [JoinableThread] = []
    var leftOver: [Int] = []
    for worker in 1..<max(1, count) {
        if let thread = startThread({ body(worker) }) {
            threads.append(thread)
        } else {
            leftOver.append(worker)
        }
    }
    body(0)
    for worker in leftOver { body(worker) }
    for thread in threads { thread.join() }
}

/// Starts a joinable thread with a 1 MiB stack; nil when none can be made.
func startThread(_ run: @escaping @Sendable () -> Void) -> JoinableThread? {
    JoinableThread.start(stackSize: 1 << 20, run)
}

/// Maps `items` through `transform` on `workers` threads, sharding by index
/// (item i goes to worker i mod workers), and returns results in order.
/// `setUp` runs once per worker (e.g. to register a sanlock connection) on
/// the thread that does that worker's share, and its value is lent to every
/// call there.
func parallelMap<Item: Sendable, Output: Sendable, Context: ~Copyable>(
    _ items: [Item],
    workers: Int,
    setUp: @escaping @Sendable () -> Context,
    _ transform: @escaping @Sendable (Item, inout Context) -> Output
) -> [Output] {
    let workers = max(1, min(workers, items.count))
    let results = Mutex<[Output?]>(Array(repeating: nil, count: items.count))
    onWorkerThreads(workers) { worker in
        var context = setUp()
        var local: [(Int, Output)] = []
        for index in stride(from: worker, to: items.count, by: workers) {
            local.append((index, transform(items[index], &context)))
        }
        results.withLock { all in
            for (index, output) in local { all[index] = output }
        }
    }
    return results.withLock { $0.map { $0! } }
}

func parallelMap<Item: Sendable, Output: Sendable>(
    _ items: [Item], workers: Int, _ transform: @escaping @Sendable (Item) -> Output
) -> [Output] {
    parallelMap(items, workers: workers, setUp: { () }, { item, _ in transform(item) })
}
