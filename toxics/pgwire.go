package toxics

import (
	"fmt"
	"strings"
)

// SQLSTATE codes for [PgError] and [PgRefuse].
const (
	PgSerializationFailure = "40001" // serialization_failure: retry the transaction
	PgDeadlockDetected     = "40P01" // deadlock_detected: retry the transaction
	PgAdminShutdown        = "57P01" // admin_shutdown: the server closes the session
	PgTooManyConnections   = "53300" // too_many_connections: at start-up
)

// PgErrorCodes lists the query errors of [PgError], mildest first: the
// transaction may be retried on the same session, then the session ends.
func PgErrorCodes() []string {
	return []string{PgSerializationFailure, PgDeadlockDetected, PgAdminShutdown}
}

// PgFatal reports whether Postgres ends the session after an error with
// code: the admin and crash shutdowns, cannot-connect-now, and the
// connection exceptions (class 08).
func PgFatal(code string) bool {
	switch code {
	case PgAdminShutdown, "57P02", "57P03":
		return true
	}
	return strings.HasPrefix(code, "08")
}

// PgMessage returns the message an error with code carries unless the
// fault gives its own.
func PgMessage(code string) string {
	switch code {
	case PgSerializationFailure:
		return "could not serialize access due to concurrent update"
	case PgDeadlockDetected:
		return "deadlock detected"
	case PgAdminShutdown:
		return "terminating connection due to administrator command"
	case PgTooManyConnections:
		return "sorry, too many clients already"
	}
	return "error injected by shakedown (SQLSTATE " + code + ")"
}

func validSQLState(k Kind, code string) error {
	if len(code) != 5 {
		return &FieldError{Kind: k, Field: "code", Value: fmt.Sprintf("%q", code), Reason: "must be a SQLSTATE of 5 characters, such as \"40001\""}
	}
	for _, b := range []byte(code) {
		if !(b >= '0' && b <= '9' || b >= 'A' && b <= 'Z') {
			return &FieldError{Kind: k, Field: "code", Value: fmt.Sprintf("%q", code), Reason: "must hold only digits and upper-case letters"}
		}
	}
	if strings.HasPrefix(code, "00") || strings.HasPrefix(code, "01") || strings.HasPrefix(code, "02") {
		return &FieldError{Kind: k, Field: "code", Value: fmt.Sprintf("%q", code), Reason: "is a success, warning or no-data class (00, 01, 02), not an error"}
	}
	return nil
}

func validMessage(k Kind, m string) error {
	if strings.IndexByte(m, 0) >= 0 {
		return &FieldError{Kind: k, Field: "message", Value: fmt.Sprintf("%q", m), Reason: "must not hold a NUL byte"}
	}
	return nil
}

// PgError answers the Postgres queries that Requests selects with an
// ErrorResponse of SQLSTATE Code (and Message, or [PgMessage] of the code
// if empty) instead of forwarding them; the server never sees them. A
// query is a simple Query message, or an extended-protocol batch (Parse,
// Bind, Describe, Execute, up to its Sync), as pgx sends them. For the
// extended protocol the SQL of a Bind is that of the Parse that prepared
// its statement on the same connection.
//
// As Postgres does, the ErrorResponse is followed by ReadyForQuery and the
// session stays usable, except for the codes after which Postgres closes
// the connection ([PgFatal], such as 57P01 admin_shutdown): then the
// error has severity FATAL and the connection closes.
type PgError struct {
	Code    string
	Message string
	Requests
}

func (PgError) Kind() Kind { return KindPgError }
func (f PgError) Validate() error {
	return firstErr(validSQLState(KindPgError, f.Code), validMessage(KindPgError, f.Message), f.Requests.validate(KindPgError))
}
func (f PgError) String() string {
	return call(KindPgError, f.Code+" "+f.Requests.String())
}

// PgRefuse answers the start-up of the Postgres connections that Requests
// selects with a FATAL ErrorResponse of SQLSTATE Code (such as
// [PgTooManyConnections]) and closes them, as a server out of connection
// slots does. An SSLRequest before the start-up is answered 'N' (no TLS),
// so clients that prefer TLS go on in plain text to be refused. Commands
// must be empty: a start-up names no command.
type PgRefuse struct {
	Code    string
	Message string
	Requests
}

func (PgRefuse) Kind() Kind { return KindPgRefuse }
func (f PgRefuse) Validate() error {
	if f.Commands != "" {
		return &FieldError{Kind: KindPgRefuse, Field: "commands", Value: fmt.Sprintf("%q", f.Commands), Reason: "must be empty: a connection's start-up names no command"}
	}
	return firstErr(validSQLState(KindPgRefuse, f.Code), validMessage(KindPgRefuse, f.Message), f.Requests.validate(KindPgRefuse))
}
func (f PgRefuse) String() string {
	return call(KindPgRefuse, f.Code+" "+f.Requests.String())
}

func (PgError) fault()      {}
func (PgRefuse) fault()     {}
func (PgError) linkFault()  {}
func (PgRefuse) linkFault() {}
