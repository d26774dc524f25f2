import Foundation
import Synchronization

/// Runs `body(worker)` for workers 0..<count, each on its own thread, and
/// waits for all. Dedicated threads rather than a shared pool: the work
/// blocks in sanlock and disk calls, and a registered sanlock connection must
/// stay on one thread.
func onWorkerThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    if count <= 1 {
        body(0)
        return
    }
    let group = DispatchGroup()
    for worker in 0..<count {
        group.enter()
        let thread = Thread {
            body(worker)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}

/// Maps `items` through `transform` on `workers` threads, sharding by index
/// (item i goes to worker i mod workers), and returns results in order.
/// `setUp` runs once per worker thread (e.g. to register a sanlock
/// connection) and its value is lent to every call on that thread.
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
