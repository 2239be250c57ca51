package toxics

// KindData is the kind of a data step: statements of the user's own run
// on a real dependency when the step begins, and others when it ends
// (rename a column and rename it back, null a column and restore it). A
// data step is a node fault (it acts on the dependency's data) that only
// targets made for it take ([Kind.Protocol] is [ProtocolData]): harness's
// Postgres.Statements and Redis.Commands make them.
const KindData Kind = "data"

// ProtocolData is what [Kind.Protocol] returns for [KindData].
const ProtocolData = "data"

// Data is a data step: the target it is aimed at holds the statements.
type Data struct{}

func (Data) Kind() Kind       { return KindData }
func (Data) Validate() error  { return nil }
func (f Data) String() string { return call(KindData, "") }
func (Data) fault()           {}
func (Data) nodeFault()       {}
