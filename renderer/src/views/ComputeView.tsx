/** Compute: synchronous routed requests and asynchronous jobs (add numbers, sort an array). */
import { useMemo, useState } from 'react';
import type { ComputeOp, JobInfo } from '../../../core/control/api';
import { useActions, useConsole } from '../context';
import { formatRoute, formatTime } from '../lib/format';
import { parseValues } from '../lib/values';
import { formatResult } from '../stores';

function JobsTable() {
  const jobs = useConsole((s) => s.jobs);
  const list = useMemo<JobInfo[]>(() => Object.values(jobs).sort((a, b) => b.submittedAt - a.submittedAt || (a.id < b.id ? 1 : -1)), [jobs]);
  return (
    <table className="table" data-testid="jobs-table">
      <thead>
        <tr>
          <th>Job</th>
          <th>Op</th>
          <th className="num">Values</th>
          <th>Team</th>
          <th>State</th>
          <th>Result</th>
          <th>Route</th>
          <th>Submitted</th>
          <th>Finished</th>
        </tr>
      </thead>
      <tbody>
        {list.map((j) => (
          <tr key={j.id} data-testid={`job-row-${j.id}`} data-state={j.state}>
            <td className="mono">{j.id}</td>
            <td>{j.op}</td>
            <td className="num">{j.values.length}</td>
            <td>{j.team ?? 'any'}</td>
            <td>
              <span className={`state state-${j.state}`} data-testid={`job-state-${j.id}`}>
                {j.state}
              </span>
            </td>
            <td className="mono result-cell" title={formatResult(j.result)}>
              {j.state === 'failed' ? <span className="error-text">{j.error ? `${j.error.message} (${j.error.code})` : 'failed'}</span> : formatResult(j.result)}
            </td>
            <td className="mono">{formatRoute(j.route)}</td>
            <td className="mono">
              {formatTime(j.submittedAt)} <span className="muted">by {j.submittedBy}</span>
            </td>
            <td className="mono">{j.finishedAt ? formatTime(j.finishedAt) : ''}</td>
          </tr>
        ))}
        {list.length === 0 && (
          <tr>
            <td colSpan={9} className="empty">
              No jobs yet. Submit one above.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

export function ComputeView() {
  const actions = useActions();
  const teamList = useConsole((s) => s.status?.teams);
  const nodes = useConsole((s) => s.status?.nodes);
  const teams = useMemo(() => {
    const names = new Set<string>((teamList ?? []).map((t) => t.name));
    for (const n of nodes ?? []) if (n.team) names.add(n.team);
    return [...names].sort();
  }, [teamList, nodes]);
  const lastResult = useConsole((s) => s.lastResult);
  const lastError = useConsole((s) => s.lastError);
  const busy = useConsole((s) => s.computeBusy);
  const setError = useConsole((s) => s.setComputeError);
  const [op, setOp] = useState<ComputeOp>('add');
  const [text, setText] = useState('');
  const [team, setTeam] = useState('any');
  const [inputError, setInputError] = useState<string | null>(null);

  const go = (kind: 'request' | 'submit') => {
    const parsed = parseValues(text);
    if (!parsed.ok) {
      setInputError(parsed.error);
      return;
    }
    setInputError(null);
    setError(null);
    const target = team === 'any' ? null : team;
    void (kind === 'request' ? actions.request(op, parsed.values, target) : actions.submit(op, parsed.values, target));
  };

  return (
    <div className="view compute-view" data-testid="view-compute">
      <div className="view-head">
        <h2>Compute</h2>
        <span className="muted">Requests are routed leader → team leader → worker; jobs go through the replicated queue.</span>
      </div>
      <section className="panel">
        <form
          className="compute-form"
          onSubmit={(e) => {
            e.preventDefault();
            go('request');
          }}
        >
          <label>
            <span className="label">Operation</span>
            <select data-testid="compute-op" value={op} onChange={(e) => setOp(e.target.value as ComputeOp)}>
              <option value="add">add</option>
              <option value="sort">sort</option>
            </select>
          </label>
          <label className="grow">
            <span className="label">Values</span>
            <input
              type="text"
              data-testid="compute-values"
              placeholder="e.g. 3, 1, 2 or 3 1 2"
              value={text}
              aria-invalid={inputError ? true : undefined}
              className={inputError ? 'invalid' : undefined}
              onChange={(e) => {
                setText(e.target.value);
                if (inputError) setInputError(null);
              }}
            />
          </label>
          <label>
            <span className="label">Team</span>
            <select data-testid="compute-team" value={team} onChange={(e) => setTeam(e.target.value)}>
              <option value="any">any</option>
              {teams.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
          <div className="buttons">
            <button type="submit" className="btn primary" data-testid="compute-request" disabled={busy}>
              Request (sync)
            </button>
            <button type="button" className="btn" data-testid="compute-submit" disabled={busy} onClick={() => go('submit')}>
              Submit job (async)
            </button>
          </div>
        </form>
        {inputError && (
          <div className="form-error" data-testid="compute-error" role="alert">
            {inputError}
          </div>
        )}
        {!inputError && lastError && (
          <div className="form-error" data-testid="compute-error" role="alert">
            {lastError}
          </div>
        )}
      </section>
      <section className="panel result-panel">
        <h3>Last request</h3>
        {lastResult ? (
          <div className="result-grid">
            <span className="label">Result</span>
            <span className="mono result" data-testid="compute-result">
              {formatResult(lastResult.result)}
            </span>
            <span className="label">Route</span>
            <span>
              <span className="mono" data-testid="compute-route">
                {formatRoute(lastResult.route)}
              </span>
              <span className="muted" data-testid="compute-duration">
                {' '}
                in {lastResult.durationMs} ms ({lastResult.route.length - 1} hop{lastResult.route.length === 2 ? '' : 's'})
              </span>
            </span>
          </div>
        ) : (
          <div className="empty">{busy ? 'Working…' : 'No request yet.'}</div>
        )}
      </section>
      <section className="panel">
        <h3>Jobs</h3>
        <JobsTable />
      </section>
    </div>
  );
}
