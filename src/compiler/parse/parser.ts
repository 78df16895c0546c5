// The .llm grammar as one Chevrotain CstParser. One instance is built at load time and reused
// (`parser.input = tokens`); error recovery is on so one run reports several syntax errors.
// The CST it produces is turned into the AST by to-ast.ts.

import { CstParser, type CstNode, type IToken } from "chevrotain";
import * as T from "./lexer.js";

class LlmParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: "full" });
    this.performSelfAnalysis();
  }

  // ------------------------------------------------------------------ module
  module = this.RULE("module", () => {
    this.MANY(() => this.SUBRULE(this.importDecl));
    this.MANY2(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.fnDecl) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
      ]),
    );
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.StringLiteral);
    this.OPTION(() => this.CONSUME(T.Semicolon));
  });

  fnDecl = this.RULE("fnDecl", () => {
    this.CONSUME(T.Fn);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.param) });
    this.CONSUME(T.RParen);
    this.OPTION(() => {
      this.CONSUME(T.Arrow);
      this.SUBRULE(this.typeExpr);
    });
    this.SUBRULE(this.block);
  });

  param = this.RULE("param", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
  });

  block = this.RULE("block", () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.stmt));
    this.CONSUME(T.RCurly);
  });

  // ------------------------------------------------------------------ statements
  stmt = this.RULE("stmt", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.returnStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => this.SUBRULE(this.assignStmt) },
    ]);
    this.OPTION(() => this.CONSUME(T.Semicolon));
  });

  returnStmt = this.RULE("returnStmt", () => {
    this.CONSUME(T.Return);
    this.SUBRULE(this.expr);
  });

  forStmt = this.RULE("forStmt", () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Comma);
      this.CONSUME2(T.Identifier);
    });
    this.CONSUME(T.In);
    this.SUBRULE(this.expr);
    this.OPTION2(() => {
      this.CONSUME(T.DotDot);
      this.SUBRULE2(this.expr);
    });
    this.SUBRULE(this.block);
  });

  assignStmt = this.RULE("assignStmt", () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  // ------------------------------------------------------------------ model
  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Extends);
      this.CONSUME2(T.Identifier);
    });
    this.MANY2(() => this.SUBRULE(this.formatNames));
    this.CONSUME(T.LCurly);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.configBlock) },
        { ALT: () => this.SUBRULE(this.weightsBlock) },
        { ALT: () => this.SUBRULE(this.stateDecl) },
        { ALT: () => this.SUBRULE(this.fnDecl) },
        { ALT: () => this.SUBRULE(this.fnDrop) },
      ]),
    );
    this.CONSUME(T.RCurly);
  });

  formatNames = this.RULE("formatNames", () => {
    this.SUBRULE(this.keyFormat);
    this.AT_LEAST_ONE_SEP({ SEP: T.Pipe, DEF: () => this.CONSUME(T.StringLiteral) });
  });

  keyFormat = this.RULE("keyFormat", () => {
    this.OR([{ ALT: () => this.CONSUME(T.Gguf) }, { ALT: () => this.CONSUME(T.Hf) }]);
  });

  fnDrop = this.RULE("fnDrop", () => {
    this.CONSUME(T.Drop);
    this.CONSUME(T.Fn);
    this.CONSUME(T.Identifier);
  });

  configBlock = this.RULE("configBlock", () => {
    this.CONSUME(T.Config);
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.requireItem) },
        { ALT: () => this.SUBRULE(this.ignoreItem) },
        { ALT: () => this.SUBRULE(this.withinItem) },
        { ALT: () => this.SUBRULE(this.configParam) },
      ]);
      this.OPTION(() => this.CONSUME(T.Semicolon));
    });
    this.CONSUME(T.RCurly);
  });

  requireItem = this.RULE("requireItem", () => {
    this.CONSUME(T.Require);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.CONSUME(T.StringLiteral);
    });
  });

  ignoreItem = this.RULE("ignoreItem", () => {
    this.CONSUME(T.Ignore);
    this.SUBRULE(this.keyFormat);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.StringLiteral) });
  });

  withinItem = this.RULE("withinItem", () => {
    this.CONSUME(T.Within);
    this.SUBRULE(this.keyFormat);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.StringLiteral) });
  });

  configParam = this.RULE("configParam", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
    this.MANY(() => this.SUBRULE(this.keyClause));
  });

  keyClause = this.RULE("keyClause", () => {
    this.SUBRULE(this.keyFormat);
    this.AT_LEAST_ONE_SEP({ SEP: T.Pipe, DEF: () => this.SUBRULE(this.keySource) });
    this.OPTION(() => this.CONSUME(T.Required));
    this.OPTION2(() => {
      this.CONSUME(T.When);
      this.SUBRULE(this.expr, { LABEL: "when" });
    });
    this.OPTION3(() => {
      this.CONSUME(T.Else);
      this.SUBRULE2(this.expr, { LABEL: "fallback" });
    });
  });

  // `tensor "name"` is the only word allowed before the string; to-ast.ts reports any other.
  keySource = this.RULE("keySource", () => {
    this.OPTION(() => this.CONSUME(T.Identifier));
    this.CONSUME(T.StringLiteral);
    this.MANY(() => {
      this.CONSUME(T.PipeGt);
      this.SUBRULE(this.callExpr);
    });
  });

  weightsBlock = this.RULE("weightsBlock", () => {
    this.CONSUME(T.Weights);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.weightItem));
    this.CONSUME(T.RCurly);
  });

  weightItem = this.RULE("weightItem", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.weightGroup) },
      { ALT: () => this.SUBRULE(this.weightDecl) },
      { ALT: () => this.SUBRULE(this.weightDrop) },
    ]);
    this.OPTION(() => this.CONSUME(T.Semicolon));
  });

  weightGroup = this.RULE("weightGroup", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LSquare);
    this.SUBRULE(this.expr);
    this.CONSUME(T.RSquare);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.weightItem));
    this.CONSUME(T.RCurly);
  });

  weightDecl = this.RULE("weightDecl", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.tensorType);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.ggufClause) },
        { ALT: () => this.SUBRULE(this.hfClause) },
        { ALT: () => this.CONSUME(T.Optional) },
        { ALT: () => this.SUBRULE(this.whenClause) },
        { ALT: () => this.SUBRULE(this.tieClause) },
        { ALT: () => this.SUBRULE(this.initClause) },
      ]),
    );
  });

  weightDrop = this.RULE("weightDrop", () => {
    this.CONSUME(T.Drop);
    this.CONSUME(T.Identifier);
  });

  ggufClause = this.RULE("ggufClause", () => {
    this.CONSUME(T.Gguf);
    this.CONSUME(T.StringLiteral);
    this.MANY(() => {
      this.CONSUME(T.PipeGt);
      this.SUBRULE(this.callExpr);
    });
  });

  hfClause = this.RULE("hfClause", () => {
    this.CONSUME(T.Hf);
    this.CONSUME(T.StringLiteral);
    this.MANY(() => {
      this.CONSUME(T.PipeGt);
      this.SUBRULE(this.callExpr);
    });
  });

  whenClause = this.RULE("whenClause", () => {
    this.CONSUME(T.When);
    this.SUBRULE(this.expr);
  });

  tieClause = this.RULE("tieClause", () => {
    this.CONSUME(T.Equals);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.If);
      this.SUBRULE(this.expr);
    });
  });

  // `init normal(0, 0.02)`, `init zeros`: the initialiser's name, then its arguments if it takes any.
  initClause = this.RULE("initClause", () => {
    this.CONSUME(T.Init);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.argList));
  });

  stateDecl = this.RULE("stateDecl", () => {
    this.CONSUME(T.State);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
  });

  // ------------------------------------------------------------------ types
  typeExpr = this.RULE("typeExpr", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.tensorType) },
      { ALT: () => this.CONSUME(T.TypeName) },
      { ALT: () => this.SUBRULE(this.namedType) },
      { ALT: () => this.SUBRULE(this.enumType) },
      { ALT: () => this.SUBRULE(this.tupleType) },
    ]);
  });

  // `...` is accepted at any place in the list so that a misplaced one gets a located message (to-ast.ts).
  tensorType = this.RULE("tensorType", () => {
    this.CONSUME(T.LSquare);
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () =>
        this.OR([
          { ALT: () => this.CONSUME(T.Ellipsis) },
          { ALT: () => this.SUBRULE(this.expr) },
        ]),
    });
    this.CONSUME(T.RSquare);
    this.OPTION(() => this.CONSUME(T.TypeName));
  });

  namedType = this.RULE("namedType", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LSquare);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
      this.CONSUME(T.RSquare);
    });
  });

  enumType = this.RULE("enumType", () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Pipe, DEF: () => this.CONSUME(T.StringLiteral) });
  });

  tupleType = this.RULE("tupleType", () => {
    this.CONSUME(T.LParen);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.typeExpr) });
    this.CONSUME(T.RParen);
  });

  // ------------------------------------------------------------------ expressions (lowest precedence first)
  expr = this.RULE("expr", () => {
    this.SUBRULE(this.orExpr);
    this.OPTION(() => {
      this.CONSUME(T.Question);
      this.SUBRULE(this.expr, { LABEL: "then" });
      this.CONSUME(T.Colon);
      this.SUBRULE2(this.expr, { LABEL: "else" });
    });
  });

  orExpr = this.RULE("orExpr", () => {
    this.SUBRULE(this.andExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(T.OrOr, { LABEL: "ops" });
      this.SUBRULE2(this.andExpr, { LABEL: "operands" });
    });
  });

  andExpr = this.RULE("andExpr", () => {
    this.SUBRULE(this.cmpExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(T.AndAnd, { LABEL: "ops" });
      this.SUBRULE2(this.cmpExpr, { LABEL: "operands" });
    });
  });

  // Comparisons do not chain: `a < b < c` is a syntax error rather than a surprise.
  cmpExpr = this.RULE("cmpExpr", () => {
    this.SUBRULE(this.addExpr, { LABEL: "operands" });
    this.OPTION(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.EqEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.NotEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.LtEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.GtEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Lt, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Gt, { LABEL: "ops" }) },
      ]);
      this.SUBRULE2(this.addExpr, { LABEL: "operands" });
    });
  });

  addExpr = this.RULE("addExpr", () => {
    this.SUBRULE(this.mulExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Plus, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Minus, { LABEL: "ops" }) },
      ]);
      this.SUBRULE2(this.mulExpr, { LABEL: "operands" });
    });
  });

  mulExpr = this.RULE("mulExpr", () => {
    this.SUBRULE(this.unaryExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Star, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Slash, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Percent, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.At, { LABEL: "ops" }) },
      ]);
      this.SUBRULE2(this.unaryExpr, { LABEL: "operands" });
    });
  });

  unaryExpr = this.RULE("unaryExpr", () => {
    this.OR([
      {
        ALT: () => {
          this.OR2([
            { ALT: () => this.CONSUME(T.Minus, { LABEL: "op" }) },
            { ALT: () => this.CONSUME(T.Bang, { LABEL: "op" }) },
          ]);
          this.SUBRULE(this.unaryExpr, { LABEL: "operand" });
        },
      },
      { ALT: () => this.SUBRULE(this.powExpr, { LABEL: "pow" }) },
    ]);
  });

  // `**` binds tighter than unary minus on its left and is right-associative: -a**b = -(a**b).
  powExpr = this.RULE("powExpr", () => {
    this.SUBRULE(this.postfixExpr, { LABEL: "base" });
    this.OPTION(() => {
      this.CONSUME(T.StarStar);
      this.SUBRULE(this.unaryExpr, { LABEL: "exponent" });
    });
  });

  postfixExpr = this.RULE("postfixExpr", () => {
    this.SUBRULE(this.primary);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.memberSuffix, { LABEL: "suffixes" }) },
        { ALT: () => this.SUBRULE(this.indexSuffix, { LABEL: "suffixes" }) },
      ]),
    );
  });

  memberSuffix = this.RULE("memberSuffix", () => {
    this.CONSUME(T.Dot);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.argList));
  });

  indexSuffix = this.RULE("indexSuffix", () => {
    this.CONSUME(T.LSquare);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.indexItem) });
    this.CONSUME(T.RSquare);
  });

  // `e`, `a:b`, `a:`, `:b`, `:`
  indexItem = this.RULE("indexItem", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Colon);
          this.OPTION(() => this.SUBRULE(this.expr, { LABEL: "end" }));
        },
      },
      {
        ALT: () => {
          this.SUBRULE2(this.expr, { LABEL: "start" });
          this.OPTION2(() => {
            this.CONSUME2(T.Colon);
            this.OPTION3(() => this.SUBRULE3(this.expr, { LABEL: "end" }));
          });
        },
      },
    ]);
  });

  argList = this.RULE("argList", () => {
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.arg) });
    this.CONSUME(T.RParen);
  });

  arg = this.RULE("arg", () => {
    this.OPTION(() => {
      this.CONSUME(T.Identifier, { LABEL: "name" });
      this.CONSUME(T.Colon);
    });
    this.SUBRULE(this.expr);
  });

  callExpr = this.RULE("callExpr", () => {
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.argList);
  });

  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      {
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.OPTION(() => this.SUBRULE(this.argList));
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expr);
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LSquare);
          this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE2(this.expr, { LABEL: "elems" }) });
          this.CONSUME(T.RSquare);
        },
      },
    ]);
  });

  /** The next token to parse; after a stack overflow, where the parser had got to. */
  nextToken(): IToken {
    return this.LA(1);
  }
}

export const parser = new LlmParser();
export type { CstNode };
