// The recurrence oracle: an RFC 5545 engine no one here wrote, asked what our engine is asked.
//
// rrule-temporal (a TypeScript engine on the Temporal API; it does not derive from
// python-dateutil) expands each rule in wall-clock time: the rule runs with its start as
// a UTC wall time, where no day has a gap or an overlap. Each wall time is then placed
// in the schedule's zone by Temporal (the time zone data of Node.js's ICU, not Python's)
// with RFC 5545 §3.3.5's rule, which is Temporal's "compatible": a time in a gap moves
// forward by the gap, an ambiguous one takes its first instant. What follows is the
// recurrence set of RFC 5545 §3.8.5: distinct instants in order, COUNT counting them,
// EXDATE removed after COUNT, UNTIL inclusive, and our one limit on searching: a rule
// that produces nothing for `horizonDays` after an occurrence (or its start) has ended.
//
// Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
//   request: {id, rule, start, zone, n, count, until, exdates, rdates, horizonDays}
//     rule: RRULE text without COUNT or UNTIL; start, exdates and rdates: wall times
//     "YYYY-MM-DDTHH:MM:SS" in the zone; until: an instant, epoch milliseconds.
//   answer: {id, instants: [epoch milliseconds, ...]} or {id, error: "..."}
import { RRuleTemporal } from 'rrule-temporal';
import { Temporal } from 'temporal-polyfill';
import { createInterface } from 'node:readline';

const HOUR = 3_600_000;
// Wall times past the n-th are read until they are this far beyond it: a time moved
// forward out of a gap (at most a few hours) can sort before one that came earlier.
const SETTLE = 3 * HOUR;
const MAX_WALL_TIMES = 20_000;
// The shortest each FREQ's period can be.
const PERIOD = {
  YEARLY: 365 * 24 * HOUR,
  MONTHLY: 28 * 24 * HOUR,
  WEEKLY: 7 * 24 * HOUR,
  DAILY: 24 * HOUR,
  HOURLY: HOUR,
  MINUTELY: 60_000,
};

function wallEpoch(zoned) {
  return zoned.epochMilliseconds; // zoned in UTC: its epoch is its wall time read as UTC
}

function expand(request) {
  const start = Temporal.PlainDateTime.from(request.start);
  const frequency = /FREQ=([A-Z]+)/.exec(request.rule)[1];
  const rule = new RRuleTemporal({
    rruleString: request.rule,
    dtstart: start.toZonedDateTime('UTC'),
    // Periods enough to search the horizon after each of the occurrences asked for: past
    // it the search has ended anyway (a rule silent that long has ended; see the header).
    maxIterations: (request.n + 1) * (Math.ceil((request.horizonDays * 24 * HOUR) / PERIOD[frequency]) + 2),
    cache: false,
  });
  const wanted = request.count ?? request.n + request.exdates.length;
  const walls = [];
  try {
    rule.all((zoned) => {
      walls.push(zoned);
      if (walls.length >= MAX_WALL_TIMES) return false;
      if (walls.length <= wanted) return true;
      return wallEpoch(zoned) - wallEpoch(walls[wanted - 1]) <= SETTLE;
    });
  } catch (error) {
    // The search went as far as the horizon allows: what was found so far is the answer.
    if (!String(error.message).startsWith('Maximum iterations')) throw error;
  }
  const instants = [
    ...new Set(
      walls.map((zoned) =>
        zoned.toPlainDateTime().toZonedDateTime(request.zone, { disambiguation: 'compatible' })
          .epochMilliseconds,
      ),
    ),
  ].sort((a, b) => a - b);
  const startInstant = start.toZonedDateTime(request.zone, { disambiguation: 'compatible' }).epochMilliseconds;
  const horizon = request.horizonDays * 24 * HOUR;
  const found = [];
  let previous = startInstant;
  for (const instant of instants) {
    if (instant < startInstant) continue;
    if (instant - previous > horizon) break;
    previous = instant;
    found.push(instant);
  }
  let set = request.count == null ? found : found.slice(0, request.count);
  if (request.until != null) set = set.filter((instant) => instant <= request.until);
  // RDATEs join the set after COUNT and UNTIL, which belong to the rule (RFC 5545 §3.8.5.2).
  const rdates = (request.rdates ?? []).map(
    (wall) => Temporal.PlainDateTime.from(wall).toZonedDateTime(request.zone, { disambiguation: 'compatible' })
      .epochMilliseconds,
  );
  set = [...new Set([...set, ...rdates.filter((instant) => instant >= startInstant)])].sort((a, b) => a - b);
  const excluded = new Set(
    request.exdates.map(
      (wall) => Temporal.PlainDateTime.from(wall).toZonedDateTime(request.zone, { disambiguation: 'compatible' })
        .epochMilliseconds,
    ),
  );
  return set.filter((instant) => !excluded.has(instant)).slice(0, request.n);
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  let answer;
  try {
    answer = { id: request.id, instants: expand(request) };
  } catch (error) {
    answer = { id: request.id, error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
