"""The Lua scripts that change a task's state in Redis, one transition each.

Each runs atomically inside Redis, so that two web processes, or a web
process and a worker, can never see a task half changed or disagree about
it. Times come from Redis ``TIME`` (milliseconds), one clock for every
machine. Each script that ends a task publishes its id on the ends channel,
where web processes wake the requests held for it (``Prefer: wait``). A
finished task, and its ``Idempotency-Key``, expire
``TASK_RETENTION`` after it finished; nothing expires while it is unfinished.

A task is one hash: ``status``, ``created``, ``updated``, ``started``,
``endpoint`` (the view's), ``owner`` (keyed hash), ``fp`` and ``scope``
(request digest and Idempotency-Key, if any), ``request`` and ``body`` (the
request snapshot, until the task starts), ``cancel``, ``progress``, and once
finished ``head``, ``answer`` (the view's answer) and ``error``. Queued ids
sit in a sorted set scored by when their message was last sent, and in one
scored by when they were submitted; running ids in one scored by when their
lease ends.

The metrics (``metrics.py``) are counted by the same scripts, in one hash
that never expires: the whole deployment's figures, whichever process asks,
at no cost of a round trip. Its fields are ``<name>|<endpoint>|<detail>``:
``submitted``, ``finished`` (detail: the status), ``refused`` (``busy``),
``lost``, and the histograms ``queued`` and ``run`` (detail: a bucket's
number, counted alone, or ``sum``, in milliseconds).

The scripts are never retried by the client: one that ran but whose reply was
lost would run twice. A client that gets no answer answers 503, and the
client of the service tries again.
"""

from ...metrics import BUCKETS

# The histograms' bucket bounds in milliseconds, as a Lua table's items.
_BOUNDS_MS = ", ".join(str(round(bound * 1000)) for bound in BUCKETS)

# Shared by every script: the time now, whose a task is, a finished task's
# end, and the metrics.
_PRELUDE = (
    """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local bounds = {"""
    + _BOUNDS_MS
    + """}
local function count(metrics, name, endpoint, detail)
  redis.call('HINCRBY', metrics, name .. '|' .. endpoint .. '|' .. detail, 1)
end
-- One observation of a histogram: its bucket (the first bound it is within,
-- else the last, +Inf) and its sum.
local function observe(metrics, name, endpoint, ms)
  ms = math.max(0, ms)
  local bucket = #bounds + 1
  for i, bound in ipairs(bounds) do
    if ms <= bound then bucket = i; break end
  end
  count(metrics, name, endpoint, bucket)
  redis.call('HINCRBY', metrics, name .. '|' .. endpoint .. '|sum', ms)
end
-- A task's end: its final status, and the seconds it ran (ran) or waited in
-- the queue (cancelled there). Returns its endpoint, and the milliseconds it
-- was queued and ran, for the worker's or web process's end-of-task line.
local function ended(metrics, task, status, ran)
  local fields = redis.call('HMGET', task, 'endpoint', 'created', 'started')
  local endpoint = fields[1] or ''
  local created, started = tonumber(fields[2]) or now, tonumber(fields[3])
  local queued_ms, run_ms = (started or now) - created, 0
  count(metrics, 'finished', endpoint, status)
  if ran and started then
    run_ms = now - started
    observe(metrics, 'run', endpoint, run_ms)
  elseif not ran then
    observe(metrics, 'queued', endpoint, queued_ms)
  end
  return {endpoint, queued_ms, run_ms}
end
local function expire(task, retention)
  redis.call('PEXPIRE', task, retention)
  local scope = redis.call('HGET', task, 'scope')
  if scope then redis.call('PEXPIRE', scope, retention) end
end
-- A running task whose worker is lost ends failed. Returns what ended does.
local function lose(task, metrics, retention, problem)
  redis.call('HSET', task, 'status', 'failed', 'updated', now, 'error', problem)
  redis.call('HDEL', task, 'cancel')
  local outcome = ended(metrics, task, 'failed', true)
  count(metrics, 'lost', outcome[1], '')
  expire(task, retention)
  return outcome
end
-- Another owner's task is answered as if it did not exist, and before
-- anything else of it is read: its answer may be large, and the time to
-- read it would tell that the task exists. Owners are keyed hashes; Lua
-- interns every string, so comparing two compares two pointers, whatever
-- bytes they share. requester is '' for none.
local function others(task, requester)
  local owner = redis.call('HGET', task, 'owner')
  return owner and owner ~= requester
end
local function forget(task, id)
  local scope = redis.call('HGET', task, 'scope')
  if scope and redis.call('GET', scope) == id then redis.call('DEL', scope) end
  redis.call('DEL', task)
end
"""
)

# submit: hold a new queued task, unless Redis runs it past its deadline (the
# web process has given up on the reply and answered 503: refuse, so that the
# client's next try is the only one), its Idempotency-Key holds a task already
# (answer that one) or TASK_MAX_QUEUED tasks wait (refuse). Returns the
# outcome and the new task's creation time (the time now, if late), or the
# held task's id.
# KEYS: task, queued set, queued-since set, metrics[, idempotency key]
# ARGV: id, max queued, request, body, owner or '', fingerprint, task key prefix, endpoint,
#   deadline (ms)
SUBMIT = """
if now > tonumber(ARGV[9]) then return {'late', tostring(now)} end
if #KEYS == 5 then
  local held = redis.call('GET', KEYS[5])
  if held and redis.call('EXISTS', ARGV[7] .. held) == 1 then return {'held', held} end
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  count(KEYS[4], 'refused', '', 'busy')
  return {'busy', ''}
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'created', now, 'updated', now,
  'request', ARGV[3], 'body', ARGV[4], 'endpoint', ARGV[8])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[5]) end
if #KEYS == 5 then
  redis.call('HSET', KEYS[1], 'fp', ARGV[6], 'scope', KEYS[5])
  redis.call('SET', KEYS[5], ARGV[1])
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
count(KEYS[4], 'submitted', ARGV[8], '')
return {'new', tostring(now)}
"""

# start: a queued task becomes running, with a lease, and hands over its
# request, which leaves Redis now. Anything else is refused: cancelled
# meanwhile, expired, or a second delivery of its message. Returns the
# request, its body, the endpoint and the milliseconds it was queued.
# KEYS: task, queued set, running set, queued-since set, metrics
# ARGV: id, lease (ms)
START = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return false end
local task = redis.call('HMGET', KEYS[1], 'request', 'body', 'endpoint', 'created')
redis.call('HSET', KEYS[1], 'status', 'running', 'updated', now, 'started', now)
redis.call('HDEL', KEYS[1], 'request', 'body')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])
local queued_ms = now - tonumber(task[4])
observe(KEYS[5], 'queued', task[3] or '', queued_ms)
return {task[1], task[2], task[3] or '', queued_ms}
"""

# renew: a running task's worker is alive; its lease runs on. Returns 0 once
# the task no longer runs here (the reaper ended it: its worker must stop).
# KEYS: task, running set    ARGV: id, lease (ms)
RENEW = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# report: a running task's progress.
# KEYS: task    ARGV: progress (JSON)
REPORT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'updated', now)
return 1
"""

# finish: a running task ends with what its view answered; a cancellation
# asked for while it ran wins, and the answer is dropped. Returns the final
# status and the milliseconds it was queued and ran; false if it was not running.
# KEYS: task, running set, metrics
# ARGV: id, status, head or '', answer, error or '', retention (ms), cancelled problem,
#   ends channel
FINISH = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
redis.call('ZREM', KEYS[2], ARGV[1])
local status = ARGV[2]
if redis.call('HEXISTS', KEYS[1], 'cancel') == 1 then
  status = 'cancelled'
  redis.call('HSET', KEYS[1], 'error', ARGV[7])
else
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'head', ARGV[3], 'answer', ARGV[4]) end
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
end
redis.call('HSET', KEYS[1], 'status', status, 'updated', now)
local outcome = ended(KEYS[3], KEYS[1], status, true)
expire(KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[8], ARGV[1])
return {status, outcome[2], outcome[3]}
"""

# The fields a poll reads, in this order; never the request or its body.
READ_FIELDS = (
    "status",
    "created",
    "updated",
    "owner",
    "fp",
    "progress",
    "cancel",
    "error",
    "head",
    "answer",
)

# read: a task as its requester may see it: READ_FIELDS' values (all nil:
# no such task), or false (another owner's).
# KEYS: task    ARGV: requester or '', READ_FIELDS...
READ = """
if others(KEYS[1], ARGV[1]) then return false end
return redis.call('HMGET', KEYS[1], unpack(ARGV, 2))
"""

# cancel: a queued task ends cancelled and never starts; a running one is
# asked to stop; a finished one is forgotten. Returns the status before and
# the task's fields after (none once forgotten); false for another owner's.
# KEYS: task, queued set, queued-since set, metrics
# ARGV: requester or '', id, retention (ms), cancelled problem, ends channel
CANCEL = """
if others(KEYS[1], ARGV[1]) then return false end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {false, {}} end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated', now, 'error', ARGV[4])
  redis.call('HDEL', KEYS[1], 'request', 'body')
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  ended(KEYS[4], KEYS[1], 'cancelled', false)
  expire(KEYS[1], ARGV[3])
  redis.call('PUBLISH', ARGV[5], ARGV[2])
elseif status == 'running' then
  if redis.call('HSETNX', KEYS[1], 'cancel', '1') == 1 then
    redis.call('HSET', KEYS[1], 'updated', now)
  end
else
  forget(KEYS[1], ARGV[2])
end
return {status, redis.call('HGETALL', KEYS[1])}
"""

# forget: drop a task that was never handed to a worker (its message could
# not be sent), with its Idempotency-Key; one a worker started meanwhile (the
# message went after all) is left to finish. Its submit stays counted: the
# metrics' counters never go back.
# KEYS: task, queued set, queued-since set    ARGV: id
FORGET = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
forget(KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

# reap: running tasks whose lease lapsed lost their worker (killed, or its
# machine gone): they end failed. Queued tasks whose message was sent a lease
# ago or more are handed back to be sent again: a message can be lost (the
# web process died before sending it, a worker died after taking it), and a
# repeated one does nothing. Not while no worker is alive: the messages wait
# for one in the broker, and sending them again each lease would only pile
# copies there. Returns the failed tasks (id, endpoint, ms queued, ms run),
# how many lapsed leases it looked at, and the ids to resend.
# KEYS: running set, queued set, metrics, workers set
# ARGV: task key prefix, retention (ms), worker-lost problem, batch, lease (ms),
#   ends channel
REAP = """
local failed = {}
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(lapsed) do
  local task = ARGV[1] .. id
  if redis.call('HGET', task, 'status') == 'running' then
    local outcome = lose(task, KEYS[3], ARGV[2], ARGV[3])
    table.insert(failed, {id, outcome[1], outcome[2], outcome[3]})
    redis.call('PUBLISH', ARGV[6], id)
  end
  redis.call('ZREM', KEYS[1], id)
end
local resend = {}
if redis.call('ZCOUNT', KEYS[4], now, '+inf') > 0 then
  resend = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]),
    'LIMIT', 0, tonumber(ARGV[4]))
  for _, id in ipairs(resend) do redis.call('ZADD', KEYS[2], 'XX', now, id) end
end
return {failed, #lapsed, resend}
"""

# lost: a running task whose pool process died, as its Celery worker saw at
# once (WorkerLostError), ends failed without waiting for its lease. Returns
# what ended does, or false if the task no longer runs.
# KEYS: task, running set, metrics
# ARGV: id, retention (ms), worker-lost problem, ends channel
LOST = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
redis.call('ZREM', KEYS[2], ARGV[1])
local outcome = lose(KEYS[1], KEYS[3], ARGV[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return outcome
"""

# heartbeat: a Celery worker is alive, idle or not, for one more lease;
# workers whose lease lapsed leave the set, and the set goes with the last.
# KEYS: workers set    ARGV: worker name, lease (ms)
HEARTBEAT = """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# metrics: every figure at once, for /metrics: the counters' fields, tasks
# queued and running, the oldest queued task's age (ms; 0: none), and the
# workers whose heartbeat has not lapsed.
# KEYS: metrics, queued set, running set, queued-since set, workers set
METRICS = """
local oldest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local age = 0
if oldest[2] then age = math.max(0, now - tonumber(oldest[2])) end
return {redis.call('HGETALL', KEYS[1]), redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]), age, redis.call('ZCOUNT', KEYS[5], '(' .. now, '+inf')}
"""

ALL = {
    name: _PRELUDE + source
    for name, source in {
        "submit": SUBMIT,
        "start": START,
        "renew": RENEW,
        "report": REPORT,
        "read": READ,
        "finish": FINISH,
        "cancel": CANCEL,
        "forget": FORGET,
        "reap": REAP,
        "lost": LOST,
        "heartbeat": HEARTBEAT,
        "metrics": METRICS,
    }.items()
}
