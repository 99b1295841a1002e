"""BacktestService: request -> validated period -> domain backtest (signals/) -> BacktestReport message."""

from __future__ import annotations

import grpc
from cryptosignals.v1 import backtest_pb2, backtest_pb2_grpc

from service.mappers.backtest import backtest_costs, backtest_period, profile_result, report_message
from service.rpc.client_limit import ClientLimiter, caller_of
from signals.backtest import BacktestReport
from signals.backtester import Backtester
from signals.coin_universe import CoinUniverse

RUN_METHOD = "/cryptosignals.v1.BacktestService/RunBacktest"


class BacktestServicer(backtest_pb2_grpc.BacktestServiceServicer):
    def __init__(self, backtester: Backtester, universe: CoinUniverse, identity: ClientLimiter) -> None:
        self._backtester = backtester
        self._universe = universe
        self._identity = identity

    async def RunBacktest(
        self, request: backtest_pb2.RunBacktestRequest, context: grpc.aio.ServicerContext
    ) -> backtest_pb2.BacktestReport:
        symbol, period = await backtest_period(request, context, self._universe)
        try:
            costs = backtest_costs(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        # BacktestRefusedError (400) and HistoryUnavailableError (503) rise to the guard's one table;
        # anything else from the replay or the statistics is a bug: INTERNAL with a log line.
        client = caller_of(context, self._identity, RUN_METHOD)
        # UnknownProfileError (400) too.
        report: BacktestReport = await self._backtester.run(symbol, period, client, request.profile, costs)
        message = report_message(symbol, period.interval, report, request.include_bars)
        message.profile = self._backtester.config_of(request.profile).profile
        if request.compare_profiles:
            # One after the other (one backtest per client at a time); the history is shared.
            for name in self._backtester.profiles:
                other = (
                    report
                    if name == message.profile
                    else await self._backtester.run(symbol, period, client, name, costs)
                )
                message.profiles.append(profile_result(name, other))
        return message
