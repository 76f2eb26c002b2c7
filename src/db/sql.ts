// The sql tag, with the row schemas it checks. `sql.type(Schema)` queries are validated by the
// result-parser interceptor in pool.ts; `sql.unsafe` is for rows we do not describe (DDL, tests).
export { sql } from 'slonik';
